import Logging
import Rollouts
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

    /// Answers a beat presented with `credential`, the digest of the secret it carries (nil
    /// where HBS takes anonymous beats): checked and taken in one turn of the actor: a
    /// second hop onto it cost more than the check itself (fledge-bench hbs, 6 of 15 us a beat).
    public func beat(
        _ beat: HeartbeatRequest, credential: CredentialDigest?
    ) throws(CredentialRefusal) -> (reply: HeartbeatReply, stored: Bool) {
        if let credential { try authenticate(host: beat.hostname, digest: credential) }
        return self.beat(beat)
    }

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

    // MARK: Identity

    /// Binds `host` to the credential `digest`, durably; refused (conflict) when the name is
    /// bound already, here or (with Redis) by another instance first.
    public func enrol(host: String, digest: CredentialDigest) throws(ControlPlaneError) {
        if engine.state.credentials[host] == nil, let stored = store.credential(of: host) {
            engine.update { $0.credentials[host] = stored; return false }
        }
        let saved = engine
        do { try engine.enrol(host: host, digest: digest.hex) } catch { throw .engine(error) }
        do { try persist() } catch {
            engine = saved
            throw .store(error)
        }
        // Two instances may race for one name: the store's binding (set once) decides.
        if let stored = store.credential(of: host), stored != digest.hex {
            engine.update { $0.credentials[host] = stored; return false }
            throw .engine(.conflict("\(host) is enrolled already; to bind the name anew an admin must DELETE /v1/agents/\(host)"))
        }
        logger.info("host \(host) enrolled")
    }

    /// Refuses unless `digest` (of the secret a beat presents) is `host`'s bound credential
    /// (read from the store when this instance has none, or another, for the host).
    private func authenticate(host: String, digest: CredentialDigest) throws(CredentialRefusal) {
        if let known = engine.state.credentials[host], digest.matches(known) { return }
        guard let stored = store.credential(of: host) else {
            throw engine.state.credentials[host] == nil ? .notEnrolled : .wrongSecret
        }
        engine.update { $0.credentials[host] = stored; return false }
        guard digest.matches(stored) else { throw .wrongSecret }
    }

    /// Forgets `host` (an admin's `DELETE /v1/agents/NAME`): its name may enrol again.
    public func forget(host: String, by who: String) throws(ControlPlaneError) {
        let saved = engine
        do { try engine.forget(host: host) } catch { throw .engine(error) }
        do { try persist() } catch {
            engine = saved
            throw .store(error)
        }
        logger.notice("host \(host) forgotten at the request of \(who): its name may enrol again")
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
        if rollout.phase == .running { signal.fire() }
        return rollout
    }

    /// Makes the engine's events durable, then logs what an operator wants to find later:
    /// rollouts created and their phase changes (with why: the operator, the failure budget),
    /// hosts forgotten, history dropped. (Who asked, for admin requests: `AdminAuthority`.)
    private func persist() throws(StoreError) {
        let events = engine.takeOutbox()
        guard !events.isEmpty else { return }
        try store.append(events, state: engine.state)
        for event in events {
            switch event {
            case .rolloutCreated(let rollout):
                logger.notice("rollout \(rollout.id) created: \(rollout.spec.name) \(rollout.spec.version), \(rollout.hosts.count) hosts")
            case .rolloutPhase(let id, let phase, let reason, _):
                logger.notice("rollout \(id) \(phase.rawValue)\(reason.map { ": \($0)" } ?? "")")
            case .hostForgotten(let host):
                logger.notice("host \(host) forgotten")
            case .rolloutDropped(let id):
                logger.info("rollout \(id) dropped from the history")
            case .agentSeen, .hostUpdated, .hostEnrolled:
                break
            }
        }
    }
}

/// How a beat's credential checked out.
/// Why a beat's credential opens nothing.
public enum CredentialRefusal: Error, Sendable, Equatable {
    /// The host has no binding: it must enrol first.
    case notEnrolled
    /// The host is bound to another secret.
    case wrongSecret
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
