import Rollouts
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
    /// Brings in what other instances changed that a beat from `host` depends on. True when
    /// more than `host`'s own progress may have changed (rollouts, other hosts): what is
    /// derived from the whole state (the engine's peer index) must then be built again.
    func refresh(_ state: inout FleetState, host: String) -> Bool
    /// Brings in everything other instances changed (before a sweep); true as for `refresh`.
    func synchronize(_ state: inout FleetState) -> Bool
    /// `host`'s credential as the store holds it, where another instance may have bound it
    /// (nil: none, or a store only this instance writes, whose memory is the truth).
    func credential(of host: String) -> String?
}

extension FleetStore {
    /// A store of one instance shares nothing: nothing changes but through this instance.
    public var ledger: (any AdmissionLedger)? { nil }
    public func refresh(_ state: inout FleetState, host: String) -> Bool { false }
    public func synchronize(_ state: inout FleetState) -> Bool { false }
    public func credential(of host: String) -> String? { nil }
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
