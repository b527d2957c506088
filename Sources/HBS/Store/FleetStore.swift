import Wire

/// Where the fleet state survives a restart. `append` returns only once the events are
/// durable: an order goes out only after its admission is on disk (or in Redis).
public protocol FleetStore: Sendable {
    /// The state as last persisted: a snapshot with the journal after it replayed.
    func load() throws(StoreError) -> FleetState
    /// Makes `events` durable; `state` is the state after them (a store may snapshot it).
    func append(_ events: [FleetEvent], state: FleetState) throws(StoreError)

    /// The slot ledger shared with other HBS instances, if the store is shared.
    var ledger: (any AdmissionLedger)? { get }
    /// Brings in what other instances changed that a beat from `host` depends on.
    func refresh(_ state: inout FleetState, host: String)
    /// Brings in everything other instances changed (before a sweep).
    func synchronize(_ state: inout FleetState)
}

extension FleetStore {
    /// A store of one instance shares nothing.
    public var ledger: (any AdmissionLedger)? { nil }
    public func refresh(_ state: inout FleetState, host: String) {}
    public func synchronize(_ state: inout FleetState) {}
}

public enum StoreError: Error, CustomStringConvertible {
    case io(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .io(let detail): "store: \(detail)"
        case .corrupt(let detail): "store is corrupt: \(detail)"
        }
    }
}
