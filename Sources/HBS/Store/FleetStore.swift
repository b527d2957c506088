import Wire

/// Where the fleet state survives a restart. `append` returns only once the events are
/// durable: an order goes out only after its admission is on disk (or in Redis).
public protocol FleetStore: Sendable {
    /// The state as last persisted: a snapshot with the journal after it replayed.
    func load() throws(StoreError) -> FleetState
    /// Makes `events` durable; `state` is the state after them (a store may snapshot it).
    func append(_ events: [FleetEvent], state: FleetState) throws(StoreError)
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
