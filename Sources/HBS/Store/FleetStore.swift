import Rollouts
import Wire

/// Where the fleet state survives a restart. A write returns only once its events are durable:
/// an order goes out only after its admission is on disk (or in Redis).
public protocol FleetStore: Sendable {
    /// The state as last persisted: a snapshot with the journal after it replayed.
    func load() throws(StoreError) -> FleetState
    /// Turns `events` into the write that makes them durable, reading `state` (the state after
    /// them) only here, where it is current. The write itself is blocking I/O: the control
    /// plane runs it off its actor, one at a time and in order, so the beats arriving
    /// meanwhile share the next one (group commit: one fdatasync, or one MULTI/EXEC, for many).
    func prepare(_ events: [FleetEvent], state: FleetState) throws(StoreError) -> DurableWrite

    /// The slot ledger shared with other HBS instances, if the store is shared.
    var ledger: (any AdmissionLedger)? { get }
    /// Brings in what other instances changed that a beat from `host` depends on, and notes
    /// that `host` beat here; says what it touched (the engine's peer index follows it).
    /// Hosts in `keeping` have changes of this instance on their way to the store: left as
    /// they are (ours is written after whatever another instance wrote before it).
    func refresh(_ state: inout FleetState, host: String, keeping: Set<String>) -> OutsideChange
    /// Notes that `host` beat here, for a beat answered without `refresh` (the engine says it
    /// changes nothing: `RolloutEngine.quietInterval`); false when a refresh is due first,
    /// and the beat must take it.
    func quietBeat(from host: String) -> Bool
    /// Brings in everything other instances changed (before a sweep), `keeping` as for
    /// `refresh`; says what it touched.
    func synchronize(_ state: inout FleetState, keeping: Set<String>) -> OutsideChange
    /// Whether this instance runs the sweep now: where instances share a store, one of them
    /// at a time (the others' sweeps would derive the same changes again), and another takes
    /// over within moments when it dies.
    func claimSweep() -> Bool
    /// `host`'s credential as the store holds it, where another instance may have bound it
    /// (nil: none, or a store only this instance writes, whose memory is the truth).
    func credential(of host: String) -> String?
    /// The events of `rollout` after the first `after` (`RolloutEvent`; the `.noted` events
    /// `prepare` was given), in the order they were stored.
    func events(of rollout: String, after: Int) throws(StoreError) -> [RolloutEvent]
}

/// Blocking I/O that makes prepared events durable (`FleetStore.prepare`).
public typealias DurableWrite = @Sendable () throws(StoreError) -> Void

extension FleetStore {
    /// Makes `events` durable now, on the calling thread: `prepare`, then the write.
    public func append(_ events: [FleetEvent], state: FleetState) throws(StoreError) {
        guard !events.isEmpty else { return }
        try prepare(events, state: state)()
    }

    /// A store of one instance shares nothing: nothing changes but through this instance.
    public var ledger: (any AdmissionLedger)? { nil }
    public func refresh(_ state: inout FleetState, host: String, keeping: Set<String>) -> OutsideChange { .nothing }
    public func quietBeat(from host: String) -> Bool { true }
    public func synchronize(_ state: inout FleetState, keeping: Set<String>) -> OutsideChange { .nothing }
    public func claimSweep() -> Bool { true }
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
