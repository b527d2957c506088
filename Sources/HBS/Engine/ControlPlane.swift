import Logging
import Transfer
import Wire

/// The rollout engine behind an actor, with its store: every call applies to the engine, makes
/// the resulting events durable, and only then answers. The HTTP layer talks to this only.
public actor ControlPlane {
    private var engine: RolloutEngine
    private let store: any FleetStore
    private let logger: Logger
    private let clock: @Sendable () -> Int64
    /// Fired when there is new work: a rollout started or resumed (here or, with Redis, elsewhere).
    public nonisolated let signal = RolloutSignal()

    /// Loads the state from `store` and grants every admitted host a fresh lease (beats are
    /// not journaled, so the last ones before a restart are unknown).
    public init(
        store: any FleetStore, configuration: EngineConfiguration = .init(), logger: Logger,
        clock: @escaping @Sendable () -> Int64 = { UnixTime.now }
    ) throws(StoreError) {
        self.store = store
        self.logger = logger
        self.clock = clock
        var engine = RolloutEngine(state: try store.load(), configuration: configuration)
        engine.renewLeases(now: clock())
        self.engine = engine
    }

    public var state: FleetState { engine.state }

    /// Answers a beat. When the resulting changes cannot be stored the beat is still answered
    /// (the fleet keeps its rhythm), but without an order: nothing is ordered that is not durable.
    /// Answers a beat. When the resulting changes cannot be stored they are undone and the beat
    /// is still answered (the fleet keeps its rhythm), but without an order: nothing is ordered
    /// that is not durable.
    public func beat(_ beat: HeartbeatRequest) -> (reply: HeartbeatReply, stored: Bool) {
        engine.update { store.refresh(&$0, host: beat.hostname) }
        let checkpoint = engine.checkpoint(for: beat.hostname)
        var reply = engine.beat(beat, now: clock(), ledger: store.ledger)
        do {
            try persist()
            return (reply, true)
        } catch {
            engine.restore(checkpoint)
            logger.error("beat from \(beat.hostname) not stored, order withheld: \(error)")
            reply.order = nil
            return (reply, false)
        }
    }

    public func create(_ spec: RolloutSpec) throws(ControlPlaneError) -> Rollout {
        try change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.create(spec, now: now) }
    }

    public func pause(_ id: String) throws(ControlPlaneError) -> Rollout {
        try change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.pause(id, now: now) }
    }

    public func resume(_ id: String) throws(ControlPlaneError) -> Rollout {
        try change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.resume(id, now: now) }
    }

    public func abort(_ id: String) throws(ControlPlaneError) -> Rollout {
        try change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.abort(id, now: now) }
    }

    public func rollback(_ id: String) throws(ControlPlaneError) -> Rollout {
        try change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.rollback(id, now: now) }
    }

    /// Leases, deadlines, retries, completion: run every second or so.
    public func sweep() {
        let before = engine.state.activeRollout.map { "\($0.id) \($0.phase)" }
        engine.update { store.synchronize(&$0) }
        if let now = engine.state.activeRollout, now.phase == .running, "\(now.id) \(now.phase)" != before {
            signal.fire()  // another instance started or resumed one
        }
        let saved = engine
        engine.sweep(now: clock(), ledger: store.ledger)
        do { try persist() } catch {
            engine = saved  // tried again next second
            logger.error("cannot persist after sweep: \(error)")
        }
    }

    /// falcon's POST: a new falcon upgrade replaces a running falcon one, in one step, and only
    /// once the new one has been validated.
    public func replaceFalcon(_ spec: RolloutSpec) throws(ControlPlaneError) -> Rollout {
        try change { (engine: inout RolloutEngine, now) throws(EngineError) in
            do throws(ValidationError) { try spec.validate() } catch { throw .invalid(error) }
            if let active = engine.state.activeRollout, active.spec.isFalcon { _ = try engine.abort(active.id, now: now) }
            return try engine.create(spec, now: now)
        }
    }

    private func change(
        _ body: (inout RolloutEngine, Int64) throws(EngineError) -> Rollout
    ) throws(ControlPlaneError) -> Rollout {
        let saved = engine
        let rollout: Rollout
        do { rollout = try body(&engine, clock()) } catch {
            engine = saved  // all or nothing: a rollback that cannot start aborts nothing
            throw .engine(error)
        }
        do { try persist() } catch {
            engine = saved
            throw .store(error)
        }
        logger.info("rollout \(rollout.id) \(rollout.spec.name) \(rollout.spec.version): \(rollout.phase.rawValue)")
        if rollout.phase == .running { signal.fire() }
        return rollout
    }

    private func persist() throws(StoreError) {
        let events = engine.takeOutbox()
        guard !events.isEmpty else { return }
        try store.append(events, state: engine.state)
    }
}

public enum ControlPlaneError: Error, CustomStringConvertible {
    case engine(EngineError)
    case store(StoreError)

    public var description: String {
        switch self {
        case .engine(let error): error.description
        case .store(let error): error.description
        }
    }
}
