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

    public func beat(_ beat: HeartbeatRequest) throws(StoreError) -> HeartbeatReply {
        let reply = engine.beat(beat, now: clock())
        try persist()
        return reply
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
        engine.sweep(now: clock())
        do { try persist() } catch { logger.error("cannot persist after sweep: \(error)") }
    }

    private func change(
        _ body: (inout RolloutEngine, Int64) throws(EngineError) -> Rollout
    ) throws(ControlPlaneError) -> Rollout {
        let rollout: Rollout
        do { rollout = try body(&engine, clock()) } catch { throw .engine(error) }
        do { try persist() } catch { throw .store(error) }
        logger.info("rollout \(rollout.id) \(rollout.spec.name) \(rollout.spec.version): \(rollout.phase.rawValue)")
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
