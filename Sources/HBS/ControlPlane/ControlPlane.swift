import Logging
import NIOPosix
import Rollouts
import Synchronization
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
    /// The beat interval of a host with nothing to do: such beats may long-poll.
    public nonisolated let idleBeatSeconds: Double
    /// Told each rollout event this instance made durable (metrics follow them).
    /// (Told as each write lands, off the actor.)
    private let observers = Mutex<[@Sendable (String, RolloutEvent) -> Void]>([])

    /// Calls `observer` with each rollout event this instance stores from now on.
    public func observe(_ observer: @escaping @Sendable (String, RolloutEvent) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Loads the state from `store` and grants every admitted host a fresh lease (beats are
    /// not journaled, so the last ones before a restart are unknown).
    public init(
        store: any FleetStore, configuration: EngineConfiguration = .init(), logger: Logger,
        clock: @escaping @Sendable () -> Int64 = { UnixTime.now }
    ) throws(StoreError) {
        self.store = store
        self.logger = logger
        self.clock = clock
        self.idleBeatSeconds = configuration.slowBeatSeconds
        var engine = RolloutEngine(state: try store.load(), configuration: configuration)
        engine.renewLeases(now: clock())
        self.engine = engine
    }

    /// The fleet state, with the times of the beats answered off the actor taken in.
    public var state: FleetState {
        takeQuietBeats()
        return engine.state
    }

    /// Answers a beat presented with `credential`, the digest of the secret it carries (nil
    /// where HBS takes anonymous beats). A quiet host's beat (`QuietBeats`) is answered where
    /// it arrived; any other is checked and taken in one turn of the actor (a second hop onto
    /// it cost more than the check itself: fledge-bench hbs, 6 of 15 us a beat). The wait for
    /// its write is off the actor.
    public nonisolated func beat(
        _ beat: HeartbeatRequest, credential: CredentialDigest?
    ) async throws(CredentialRefusal) -> (reply: HeartbeatReply, stored: Bool) {
        if let reply = quietAnswer(beat, credential: credential) { return await answer(beat, reply, durability.lastUnsettled) }
        let (reply, ticket) = try await take(beat, credential: credential)
        return await answer(beat, reply, ticket)
    }

    /// Answers a beat once what it changed, and everything taken before it, is durable. When
    /// that cannot be stored it is undone and the beat is still answered (the fleet keeps its
    /// rhythm), but without an order: nothing is ordered that is not durable.
    public nonisolated func beat(_ beat: HeartbeatRequest) async -> (reply: HeartbeatReply, stored: Bool) {
        if let reply = quietAnswer(beat, credential: nil) { return await answer(beat, reply, durability.lastUnsettled) }
        let (reply, ticket) = await apply(beat, credential: nil)
        return await answer(beat, reply, ticket)
    }

    /// The answer to a quiet host's beat, off the actor; nil when the actor must take it. It
    /// rests, like any beat that changes nothing, on the last change issued.
    private nonisolated func quietAnswer(_ beat: HeartbeatRequest, credential: CredentialDigest?) -> HeartbeatReply? {
        quiet.answer(beat, credential: credential, now: clock()) { store.quietBeat(from: beat.hostname) }
    }

    private func take(
        _ beat: HeartbeatRequest, credential: CredentialDigest?
    ) throws(CredentialRefusal) -> (reply: HeartbeatReply, ticket: Int) {
        if let credential { try authenticate(host: beat.hostname, digest: credential) }
        return apply(beat, credential: credential)
    }

    /// Applies a beat: its answer, and the ticket of the write it waits for. Its host's next
    /// beats are answered off the actor when the engine says they change nothing.
    private func apply(_ beat: HeartbeatRequest, credential: CredentialDigest?) -> (reply: HeartbeatReply, ticket: Int) {
        takeLanded()
        follow { [unwrittenHosts] in store.refresh(&$0, host: beat.hostname, keeping: unwrittenHosts) }
        let checkpoint = engine.checkpoint(for: beat.hostname)
        let reply = engine.beat(beat, now: clock(), ledger: store.ledger)
        let ticket = persist(undo: .checkpoint(checkpoint))
        if reply.order == nil, let interval = engine.quietInterval(for: beat.hostname), let agent = engine.state.agents[beat.hostname] {
            quiet.publish(agent, credential: credential.flatMap { _ in engine.state.credentials[beat.hostname] }, interval: interval)
        }
        return (reply, ticket)
    }

    private nonisolated func answer(
        _ beat: HeartbeatRequest, _ reply: HeartbeatReply, _ ticket: Int
    ) async -> (reply: HeartbeatReply, stored: Bool) {
        let stored = await durability.wait(ticket)
        signal.beatAnswered(from: beat.hostname)
        if stored { return (reply, true) }
        logger.error("beat from \(beat.hostname) not stored, order withheld")
        var withheld = reply
        withheld.order = nil
        return (withheld, false)
    }

    public func create(_ spec: RolloutSpec) async throws(ControlPlaneError) -> Rollout {
        try await change { [ledger = store.ledger] (engine: inout RolloutEngine, now) throws(EngineError) in
            try engine.create(spec, now: now, ledger: ledger)
        }
    }

    /// Pauses `id`; `who` (an operator's address) goes into the reason its events show.
    public func pause(_ id: String, by who: String = "an operator") async throws(ControlPlaneError) -> Rollout {
        try await change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.pause(id, now: now, reason: "paused by \(who)") }
    }

    public func resume(_ id: String, by who: String = "an operator") async throws(ControlPlaneError) -> Rollout {
        try await change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.resume(id, now: now, reason: "resumed by \(who)") }
    }

    public func abort(_ id: String, by who: String = "an operator") async throws(ControlPlaneError) -> Rollout {
        try await change { (engine: inout RolloutEngine, now) throws(EngineError) in try engine.abort(id, now: now, reason: "aborted by \(who)") }
    }

    /// Rollout `id`'s phase (nil: no such rollout), without copying the state.
    public func phase(of id: String) -> RolloutPhase? { engine.state.rollouts[id]?.phase }

    /// The events of rollout `id` after the first `after`, as stored (shared by every instance
    /// on Redis). Blocking I/O for a store that reads a file or Redis: call it off the actor.
    public nonisolated func events(of id: String, after: Int) throws(StoreError) -> [RolloutEvent] {
        try store.events(of: id, after: after)
    }

    public func rollback(_ id: String) async throws(ControlPlaneError) -> Rollout {
        try await change { [ledger = store.ledger] (engine: inout RolloutEngine, now) throws(EngineError) in
            try engine.rollback(id, now: now, ledger: ledger)
        }
    }

    /// Leases, deadlines, retries, completion: run every second or so.
    public func sweep() async {
        takeLanded()
        takeQuietBeats()
        follow { [unwrittenHosts] in store.synchronize(&$0, keeping: unwrittenHosts) }
        guard store.claimSweep() else { return }  // another instance sweeps
        let saved = engine
        engine.sweep(now: clock(), ledger: store.ledger)
        if await !durability.wait(persist(undo: .engine(saved))) {
            logger.error("cannot persist after sweep: tried again next second")
        }
    }

    /// Brings in what other instances changed (`pull`: a beat's refresh, a sweep's sync) and,
    /// when that started or resumed a rollout elsewhere, wakes the hosts waiting here: on the
    /// beat path too, so they hear of it within the store's epoch interval (250 ms on Redis)
    /// while the fleet beats, not at this instance's next sweep.
    private func follow(_ pull: (inout FleetState) -> OutsideChange) {
        let before = engine.state.activeRolloutID.map { ($0, engine.state.rollouts[$0]?.phase) }
        let change = engine.update(pull)
        switch change {
        case .nothing: break
        case .hosts(let names): quiet.forget(names)
        case .everything: quiet.clear()
        }
        guard change == .everything, let id = engine.state.activeRolloutID,
              let now = engine.state.rollouts[id], now.phase == .running, before?.0 != id || before?.1 != .running else { return }
        signal.fire(first: now.admissibleNow)
    }

    /// falcon's POST: a new falcon upgrade replaces a running falcon one, in one step, and only
    /// once the new one has been validated.
    public func replaceFalcon(_ spec: RolloutSpec) async throws(ControlPlaneError) -> Rollout {
        try await change { [ledger = store.ledger] (engine: inout RolloutEngine, now) throws(EngineError) in
            do throws(ValidationError) { try spec.validate() } catch { throw .invalid(error) }
            if let active = engine.state.activeRollout, active.spec.isFalcon { _ = try engine.abort(active.id, now: now) }
            return try engine.create(spec, now: now, ledger: ledger)
        }
    }

    // MARK: Identity

    /// Binds `host` to the credential `digest`, durably; refused (conflict) when the name is
    /// bound already, here or (with Redis) by another instance first.
    public func enrol(host: String, digest: CredentialDigest) async throws(ControlPlaneError) {
        if engine.state.credentials[host] == nil, let stored = store.credential(of: host) { adopt(stored, for: host) }
        let checkpoint = engine.checkpoint(for: host)
        do { try engine.enrol(host: host, digest: digest.hex) } catch { throw .engine(error) }
        guard await durability.wait(persist(undo: .checkpoint(checkpoint))) else { throw .store(.io("the enrolment could not be stored")) }
        // Two instances may race for one name: the store's binding (set once) decides.
        if let stored = store.credential(of: host), stored != digest.hex {
            adopt(stored, for: host)
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
        adopt(stored, for: host)
        guard digest.matches(stored) else { throw .wrongSecret }
    }

    /// Takes `host`'s credential as the store holds it (bound by another instance).
    private func adopt(_ stored: String, for host: String) {
        engine.update { $0.credentials[host] = stored; return .nothing }
        quiet.forget([host])
    }

    /// Forgets `host` (an admin's `DELETE /v1/agents/NAME`): its name may enrol again.
    public func forget(host: String, by who: String) async throws(ControlPlaneError) {
        let checkpoint = engine.checkpoint(for: host)
        do { try engine.forget(host: host) } catch { throw .engine(error) }
        guard await durability.wait(persist(undo: .checkpoint(checkpoint))) else { throw .store(.io("forgetting \(host) could not be stored")) }
        logger.notice("host \(host) forgotten at the request of \(who): its name may enrol again")
    }

    private func change(
        _ body: (inout RolloutEngine, Int64) throws(EngineError) -> Rollout
    ) async throws(ControlPlaneError) -> Rollout {
        takeQuietBeats()  // a new rollout leaves out hosts gone silent: it reads when each beat last
        let saved = engine
        let rollout: Rollout
        do { rollout = try body(&engine, clock()) } catch {
            engine = saved  // all or nothing: a rollback that cannot start aborts nothing
            throw .engine(error)
        }
        guard await durability.wait(persist(undo: .engine(saved))) else { throw .store(.io("the change could not be stored")) }
        if rollout.phase == .running { signal.fire(first: rollout.admissibleNow) }
        return rollout
    }

    // MARK: Quiet beats

    /// The hosts whose beats are answered off the actor: kept true to the engine here, on the
    /// actor, as its state changes (`persist`, `follow`, `adopt`, `failed`).
    private nonisolated let quiet = QuietBeats()

    /// Hosts whose beats are answered off the actor now.
    public nonisolated var quietHosts: Int { quiet.count }

    /// Takes in the times of the beats answered off the actor, before reading when hosts last beat.
    private func takeQuietBeats() {
        engine.noteQuietBeats(quiet.takeSeen())
    }

    /// What `events` change of which beats are quiet: a rollout created, moved or dropped
    /// changes every host's answer; anything else only the hosts it touches.
    private func unquiet(_ events: [FleetEvent]) {
        let rollouts = events.contains { event in
            switch event {
            case .rolloutCreated, .rolloutPhase, .rolloutDropped: true
            case .agentSeen, .hostUpdated, .hostEnrolled, .hostForgotten, .noted: false
            }
        }
        if rollouts { quiet.clear() } else { quiet.forget(Self.hosts(of: events)) }
    }

    // MARK: Group commit

    /// How to take back a change whose write failed: a beat's checkpoint, or the whole engine
    /// as it was before an operator's change or a sweep.
    private enum Undo: Sendable {
        case checkpoint(RolloutEngine.Checkpoint)
        case engine(RolloutEngine)
    }

    /// A change applied to the engine, waiting for its events to be durable.
    private struct Waiting: Sendable {
        let events: [FleetEvent]
        let undo: Undo
        let ticket: Int
    }

    /// Where changes wait for their writes, off the actor.
    private let durability = Durability()

    /// Changes applied since the write in flight was taken, oldest first.
    private var waiting: [Waiting] = []
    /// Whether a write is in flight, and the groups written since the actor last looked (their
    /// hosts are then `settled`). Shared with the write's completion, which runs off the actor
    /// and logs and answers its group there: a group's answers, and the next group's write,
    /// never wait for the actor to be free.
    private let writes = Mutex<(inFlight: Bool, landed: [[FleetEvent]])>((false, []))

    /// Hosts with changes applied here and not yet durable (how many changes each): a sync
    /// leaves them as they are here. Another instance's write to one of them is older than
    /// ours, which lands after it: what Redis ends up holding is ours.
    private var unwritten: [String: Int] = [:]
    /// `unwritten`'s hosts, kept as a set so a beat hands it to the store without building one.
    private var unwrittenHosts: Set<String> = []

    /// Queues the engine's new events for writing; the ticket to wait for (`durability`):
    /// true once they, and everything applied before them, are durable; false when the write
    /// failed (the change, and every later one, is then undone). Changes that arrive while a
    /// write is in flight share the next one: one fdatasync (embedded) or one pipelined
    /// MULTI/EXEC (Redis) for all of them, so a fresh HBS registers a fleet at the store's
    /// sync rate times the beats in flight, not at its sync rate.
    private func persist(undo: Undo) -> Int {
        let events = stamped(engine.takeOutbox())
        if events.isEmpty {
            // A sweep that changed nothing answers nobody: it need not wait (and hold a copy
            // of the engine that would make the next beat copy the fleet). A beat that changed
            // nothing rests on what was applied before it: the last change, if not yet durable.
            if case .engine = undo { return Durability.durable }
            return durability.lastUnsettled
        }
        unquiet(events)
        for host in Self.hosts(of: events) {
            unwritten[host, default: 0] += 1
            unwrittenHosts.insert(host)
        }
        let ticket = durability.issue()
        waiting.append(Waiting(events: events, undo: undo, ticket: ticket))
        writeNext()
        return ticket
    }

    /// Starts writing what is waiting, unless a write is in flight (its completion starts the
    /// next). Called on every change, so the next group starts as soon as the last landed even
    /// while beats keep the actor busy (at a rollout's start, thousands of woken hosts).
    private func writeNext() {
        takeLanded()
        guard !waiting.isEmpty, writes.withLock({ writes in
            defer { writes.inFlight = true }
            return !writes.inFlight
        }) else { return }
        let group = waiting
        waiting = []
        let events = group.flatMap(\.events)
        var write: DurableWrite = {}
        if !events.isEmpty {
            do throws(StoreError) { write = try store.prepare(events, state: engine.state) } catch {
                failed(group, failure: error)
                return
            }
        }
        Task.detached { [self] in
            do throws(StoreError) {
                try await Self.run(write)
            } catch {
                await failed(group, failure: error)
                return
            }
            log(events)
            durability.landed(group.map(\.ticket))
            writes.withLock { writes in
                writes.landed.append(events)
                writes.inFlight = false
            }
            await writeNext()  // if no change arrives meanwhile to start it
        }
    }

    /// The hosts whose records or progress `events` change.
    private static func hosts(of events: [FleetEvent]) -> [String] {
        events.compactMap { event in
            switch event {
            case .agentSeen(let agent): agent.hostname
            case .hostUpdated(_, let host, _), .hostEnrolled(let host, _), .hostForgotten(let host): host
            case .rolloutCreated, .rolloutPhase, .rolloutDropped, .noted: nil
            }
        }
    }

    /// The groups written since the last look: their hosts are settled. Before anything
    /// reads `unwrittenHosts`.
    private func takeLanded() {
        let landed = writes.withLock { writes in
            defer { writes.landed = [] }
            return writes.landed
        }
        for events in landed { settled(events) }
    }

    /// The changes to these hosts are durable now, or undone.
    private func settled(_ events: [FleetEvent]) {
        for host in Self.hosts(of: events) {
            let left = (unwritten[host] ?? 1) - 1
            unwritten[host] = left > 0 ? left : nil
            if left <= 0 { unwrittenHosts.remove(host) }
        }
    }

    /// Takes back a change whose write failed.
    private func take(back undo: Undo) {
        switch undo {
        case .checkpoint(let checkpoint): engine.restore(checkpoint)
        case .engine(let saved): engine = saved
        }
    }

    /// A group's write failed: it is undone, with whatever was applied on top of it meanwhile
    /// (newest first), and all of them are answered as not stored.
    private func failed(_ group: [Waiting], failure: StoreError) {
        takeLanded()
        let undone = group + waiting
        waiting = []
        for change in undone.reversed() { take(back: change.undo) }
        quiet.clear()  // what was published since may rest on what is undone
        logger.error("cannot store \(group.flatMap(\.events).count) events of \(undone.count) changes, all undone: \(failure)")
        for change in undone { settled(change.events) }
        durability.undone(undone.map(\.ticket))
        writes.withLock { $0.inFlight = false }
    }

    /// Runs a store's blocking write on NIO's thread pool for blocking I/O, off the actor and
    /// off the cooperative threads.
    private static func run(_ write: @escaping DurableWrite) async throws(StoreError) {
        do {
            try await NIOThreadPool.singleton.runIfActive { () throws -> Void in try write() }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .io("the store's write did not run: \(error)")
        }
    }

    /// Rollout events get their time when they are stored.
    private func stamped(_ events: [FleetEvent]) -> [FleetEvent] {
        let now = clock()
        return events.map { event in
            guard case .noted(let id, var note) = event, note.at == 0 else { return event }
            note.at = now
            return .noted(rollout: id, note)
        }
    }

    /// What an operator wants to find in the log once it is durable: every rollout event
    /// (created, batches, hosts admitted, failed with why, done, pauses with why and by whom,
    /// completion), hosts forgotten, history dropped. (Who asked, for admin requests:
    /// `AdminAuthority`.)
    private nonisolated func log(_ events: [FleetEvent]) {
        let observers = self.observers.withLock { $0 }
        for event in events {
            switch event {
            case .noted(let id, let note):
                for observer in observers { observer(id, note) }
                switch note.kind {
                case .admitted, .done: logger.info("rollout \(id): \(note.line)")
                case .failed: logger.warning("rollout \(id): \(note.line)")
                default: logger.notice("rollout \(id): \(note.line)")
                }
            case .rolloutCreated, .rolloutPhase:
                break  // told by their events
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
