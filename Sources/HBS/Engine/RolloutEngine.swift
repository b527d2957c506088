import Wire

/// Timings and limits of the rollout engine.
public struct EngineConfiguration: Codable, Sendable, Equatable {
    /// Beat interval while a rollout has work or the host upgrades.
    public var fastBeatSeconds: Double = 1
    /// Beat interval of an idle fleet.
    public var slowBeatSeconds: Double = 60
    /// Admissions per host per rollout before it stays failed.
    public var maxAttempts = 3
    /// First retry after this many seconds, doubling per failure.
    public var retryBackoffSeconds: Int64 = 10
    /// A host not seen for this long is not made a target, and a pending one is set absent.
    public var absentAfterSeconds: Int64 = 180
    /// Unseen for this long, a host is forgotten (record and credential: it enrols again if it
    /// comes back); nil keeps every host.
    public var pruneAfterSeconds: Int64? = 30 * 24 * 3600
    /// Finished rollouts kept; older ones are dropped (the active one always stays).
    public var rolloutHistory = 50
    public var planner = PlannerConfiguration()

    public init() {}

    /// Keys a config file leaves out keep their defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        fastBeatSeconds = try container.decodeIfPresent(Double.self, forKey: .fastBeatSeconds) ?? fastBeatSeconds
        slowBeatSeconds = try container.decodeIfPresent(Double.self, forKey: .slowBeatSeconds) ?? slowBeatSeconds
        maxAttempts = try container.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? maxAttempts
        retryBackoffSeconds = try container.decodeIfPresent(Int64.self, forKey: .retryBackoffSeconds) ?? retryBackoffSeconds
        absentAfterSeconds = try container.decodeIfPresent(Int64.self, forKey: .absentAfterSeconds) ?? absentAfterSeconds
        pruneAfterSeconds = try container.decodeIfPresent(Int64.self, forKey: .pruneAfterSeconds) ?? pruneAfterSeconds
        rolloutHistory = try container.decodeIfPresent(Int.self, forKey: .rolloutHistory) ?? rolloutHistory
        planner = try container.decodeIfPresent(PlannerConfiguration.self, forKey: .planner) ?? planner
    }
}

/// Why the engine refused an operator's request.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case invalid(ValidationError)
    case notFound(String)
    case conflict(String)

    public var description: String {
        switch self {
        case .invalid(let error): error.description
        case .notFound(let id): "no rollout '\(id)'"
        case .conflict(let reason): reason
        }
    }
}

/// The rollout engine: admits hosts on their beats under the concurrency limit, batch after
/// batch, hands each its sources, follows it to confirmation or failure, frees silent hosts'
/// slots, pauses at the failure budget. Pure and synchronous: time comes in as `now`, and
/// every change is a `FleetEvent` left in `outbox` for the store to make durable.
public struct RolloutEngine: Sendable {
    public private(set) var state: FleetState
    public let configuration: EngineConfiguration
    let planner: SourcePlanner
    /// Events applied since the last `takeOutbox()`.
    private var outbox: [FleetEvent] = []
    /// Who can serve the active rollout's release; rebuilt when missing.
    private var peerIndex: PeerIndex?

    public init(state: FleetState = .init(), configuration: EngineConfiguration = .init()) {
        self.state = state
        self.configuration = configuration
        self.planner = SourcePlanner(configuration: configuration.planner)
    }

    /// The events to persist, oldest first; the outbox is empty afterwards.
    public mutating func takeOutbox() -> [FleetEvent] {
        defer { outbox = [] }
        return outbox
    }

    private mutating func record(_ event: FleetEvent) {
        state.apply(event)
        outbox.append(event)
    }

    // MARK: Operator actions

    /// Starts a rollout to every known host the selector picks that runs an older version
    /// (or any other version, for a rollback), canary first, then batches.
    @discardableResult
    public mutating func create(_ spec: RolloutSpec, now: Int64, allowsDowngrade: Bool = false) throws(EngineError) -> Rollout {
        do { try spec.validate() } catch { throw .invalid(error) }
        if let active = state.activeRollout {
            throw .conflict("rollout \(active.id) (\(active.spec.name) \(active.spec.version)) is \(active.phase.rawValue); abort it first")
        }
        var rollout = Rollout(
            id: "r\(state.nextRolloutNumber)", spec: spec, phase: .running, createdAt: now, allowsDowngrade: allowsDowngrade)
        // Hosts gone silent are left out; they join as latecomers if they come back.
        let targets = state.agents.values
            .filter { $0.lastSeen >= now - configuration.absentAfterSeconds }
            .filter { spec.selector.matches(hostname: $0.hostname, labels: $0.labels) && rollout.isTarget(version: $0.version) }
            .sorted { $0.hostname < $1.hostname }
        let canary = min(spec.canary, targets.count)
        let sizes = (canary > 0 ? [canary] : []) + spec.batches.sizes(for: targets.count - canary)
        var next = targets.makeIterator()
        for (batch, size) in sizes.enumerated() {
            for _ in 0..<size {
                guard let agent = next.next() else { break }
                rollout.set(agent.hostname, HostProgress(phase: .pending, batch: batch, fromVersion: agent.version))
            }
        }
        record(.rolloutCreated(rollout))
        return rollout
    }

    public mutating func pause(_ id: String, now: Int64, reason: String = "paused by operator") throws(EngineError) -> Rollout {
        let rollout = try find(id)
        guard rollout.phase == .running else { throw .conflict("rollout \(id) is \(rollout.phase.rawValue), not running") }
        record(.rolloutPhase(rollout: id, phase: .paused, reason: reason, at: now))
        return state.rollouts[id]!
    }

    public mutating func resume(_ id: String, now: Int64) throws(EngineError) -> Rollout {
        let rollout = try find(id)
        guard rollout.phase == .paused else { throw .conflict("rollout \(id) is \(rollout.phase.rawValue), not paused") }
        record(.rolloutPhase(rollout: id, phase: .running, reason: nil, at: now))
        return state.rollouts[id]!
    }

    /// Stops admitting; hosts already upgrading finish or roll back on their own.
    public mutating func abort(_ id: String, now: Int64) throws(EngineError) -> Rollout {
        let rollout = try find(id)
        guard rollout.phase.isActive else { throw .conflict("rollout \(id) is already \(rollout.phase.rawValue)") }
        record(.rolloutPhase(rollout: id, phase: .aborted, reason: nil, at: now))
        return state.rollouts[id]!
    }

    /// Aborts `id` if active and starts a rollout of its hosts back to the version most of
    /// them ran before it: the one explicit way to go down a version.
    public mutating func rollback(_ id: String, now: Int64) throws(EngineError) -> Rollout {
        let rollout = try find(id)
        guard case .fledge(let manifestURL) = rollout.spec.locator else {
            throw .conflict("rollout \(id) is a falcon rollout: falcon releases name no previous version; POST /agent/upgrade with the previous version and its md5")
        }
        // Only hosts it touched go back, to the version most of them came from; hosts that came
        // from another version are left where they are (roll them back by hand, or upgrade).
        let touched = rollout.hosts.filter { $0.value.attempts > 0 }
        let counts = Dictionary(touched.values.map { ($0.fromVersion, 1) }, uniquingKeysWith: +)
        guard let previous = counts.max(by: { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) })?.key else {
            throw .conflict("rollout \(id) has admitted no host yet: abort it instead")
        }
        if rollout.phase.isActive { _ = try abort(id, now: now) }
        var spec = rollout.spec
        spec.version = previous
        // The pinned manifest was the new version's; the old one is found on the sources.
        if manifestURL != nil { spec.locator = .fledge(manifestURL: nil) }
        spec.canary = 0
        spec.selector = .hosts(touched.filter { $0.value.fromVersion == previous }.keys.sorted())
        return try create(spec, now: now, allowsDowngrade: true)
    }

    private func find(_ id: String) throws(EngineError) -> Rollout {
        guard let rollout = state.rollouts[id] else { throw .notFound(id) }
        return rollout
    }

    // MARK: Identity

    /// Binds `host` to the credential `digest` (the SHA-256 of the secret HBS just issued).
    /// A name already bound keeps its binding: only an admin's `forget` frees it.
    public mutating func enrol(host: String, digest: String) throws(EngineError) {
        guard state.credentials[host] == nil else {
            throw .conflict("\(host) is enrolled already; to bind the name anew an admin must DELETE /v1/agents/\(host)")
        }
        record(.hostEnrolled(host: host, digest: digest))
    }

    /// Forgets a host: its binding (it may enrol again) and its record.
    public mutating func forget(host: String) throws(EngineError) {
        guard state.credentials[host] != nil || state.agents[host] != nil else { throw .notFound(host) }
        record(.hostForgotten(host: host))
    }

    // MARK: Heartbeats

    /// Takes a beat: remembers the agent, moves its host forward in the active rollout, and
    /// answers with an order when the host is admitted (again, if it missed the first).
    public mutating func beat(_ beat: HeartbeatRequest, now: Int64, ledger: (any AdmissionLedger)? = nil) -> HeartbeatReply {
        let agent = AgentRecord(beat, now: now)
        if let known = state.agents[beat.hostname], known.sameIdentity(as: agent) {
            state.agents[beat.hostname] = agent  // only lastSeen/state changed: not worth a journal entry
        } else {
            record(.agentSeen(agent))
        }
        // By id, never holding a copy of the rollout while it changes: a held copy would make
        // every change copy the whole host table.
        guard let id = state.activeRolloutID else {
            return HeartbeatReply(nextBeatSeconds: configuration.slowBeatSeconds)
        }
        if let index = peerIndex, index.rollout == id, !index.members.contains(agent.hostname), agent.peerURL != nil,
           let rollout = state.rollouts[id], vouches(for: agent, in: rollout) {
            peerIndex?.insert(agent)
        }
        let order = step(agent, beat: beat, rollout: id, now: now, ledger: ledger)
        let upgrading = state.rollouts[id]?.hosts[agent.hostname]?.phase.isActive ?? false
        let busy = state.rollouts[id].map { $0.phase == .running && $0.hasWork } ?? false
        return HeartbeatReply(
            order: order, nextBeatSeconds: upgrading || busy ? configuration.fastBeatSeconds : configuration.slowBeatSeconds)
    }

    private mutating func step(
        _ agent: AgentRecord, beat: HeartbeatRequest, rollout id: String, now: Int64, ledger: (any AdmissionLedger)?
    ) -> UpgradeOrder? {
        guard let spec = state.rollouts[id]?.spec else { return nil }
        let atTarget = Self.same(beat.version, spec.version)
        guard var progress = state.rollouts[id]?.hosts[agent.hostname] else {
            // A host that joins mid-rollout goes into the last batch.
            guard !atTarget, spec.selector.matches(hostname: agent.hostname, labels: agent.labels),
                  state.rollouts[id]?.isTarget(version: beat.version) == true else { return nil }
            let batch = state.rollouts[id]?.lastBatch ?? 0
            record(.hostUpdated(rollout: id, host: agent.hostname, HostProgress(phase: .pending, batch: batch, fromVersion: beat.version)))
            return step(agent, beat: beat, rollout: id, now: now, ledger: ledger)
        }

        switch progress.phase {
        case .done:
            return nil
        case .failed:
            // It got there after all (a retry elsewhere, a manual upgrade): done.
            if atTarget && beat.state == .idle {
                progress.phase = .done
                record(.hostUpdated(rollout: id, host: agent.hostname, progress))
            }
            return nil
        case .absent:
            progress.phase = .pending
            record(.hostUpdated(rollout: id, host: agent.hostname, progress))
            return step(agent, beat: beat, rollout: id, now: now, ledger: ledger)
        case .pending:
            if atTarget {
                progress.phase = .done
                record(.hostUpdated(rollout: id, host: agent.hostname, progress))
                return nil
            }
            // Never a host that is busy with an upgrade (of an aborted rollout, or one whose
            // lease ran out while it was installing): it finishes first.
            guard beat.state == .idle || beat.state == .failed else { return nil }
            guard mayAdmit(progress, rollout: id, now: now, counting: ledger == nil) else { return nil }
            guard let plan = planner.plan(
                for: agent, spec: spec, batch: progress.batch, peers: peerCandidates(near: agent, rollout: id),
                load: state.rollouts[id]?.primaryLoad ?? [:], listings: state.rollouts[id]?.listings ?? [:],
                excluded: excluded(for: progress, rollout: id))
            else { return nil }
            if let ledger, !ledger.admit(host: agent.hostname, limit: spec.maxConcurrent, leaseUntil: now + spec.leaseSeconds, now: now) {
                return nil
            }
            progress.phase = .admitted
            progress.attempts += 1
            progress.admittedAt = now
            progress.leaseUntil = now + spec.leaseSeconds
            progress.deadline = now + spec.deadlineSeconds
            progress.retryAt = nil
            progress.sources = plan.sources
            progress.fallbacks = plan.fallbacks.isEmpty ? nil : plan.fallbacks
            progress.seedShare = plan.seedShare
            progress.progressBytes = 0
            progress.bytesBySource = [:]
            record(.hostUpdated(rollout: id, host: agent.hostname, progress))
            // A swarm member serves its pieces as they arrive: a peer for those admitted next.
            if planner.isSwarm(spec) { peerIndex?.insert(agent) }
            return order(for: progress, rollout: id, spec: spec)
        case .admitted, .downloading, .installing, .restarting, .confirming:
            let before = progress
            progress.leaseUntil = now + spec.leaseSeconds
            progress.progressBytes = beat.progressBytes ?? progress.progressBytes
            progress.bytesBySource = beat.downloadedFrom ?? progress.bytesBySource
            if atTarget && beat.state == .idle {
                progress.phase = .done  // the new version runs and has committed
                progress.leaseUntil = nil
                ledger?.release(host: agent.hostname)
            } else if beat.state == .failed && (beat.rolloutId == nil || beat.rolloutId == id) {
                fail(agent.hostname, progress, in: id, reason: beat.error ?? "the agent reported a failure", now: now, ledger: ledger)
                return nil
            } else if atTarget {
                progress.phase = .confirming
            } else if beat.rolloutId == id, let phase = HostPhase(beat.state), phase.rank > progress.phase.rank {
                progress.phase = phase
            }
            // Sources it dropped for misbehaving: out of its order, never listed for it again
            // (nor for anyone, once enough hosts report one).
            if beat.rolloutId == id, let dropped = beat.droppedSources?.map(\.source) {
                let fresh = Set(dropped).subtracting(progress.reported ?? [])
                if !fresh.isEmpty {
                    progress.reported = (progress.reported ?? []) + fresh.sorted()
                    progress.sources.removeAll { fresh.contains($0) }
                }
            }
            if progress.phase.isActive { ledger?.renew(host: agent.hostname, leaseUntil: progress.leaseUntil ?? now) }
            // A swarm member still fetching with fewer peers than it should have: more, re-sent.
            var morePeers = false
            if planner.isSwarm(spec), progress.isFetching, beat.state == .downloading {
                let listed = progress.sources.filter { planner.kind(of: $0, spec: spec) == .peer }.count
                let more = planner.swarmPeers(
                    for: agent, among: peerCandidates(near: agent, rollout: id), listings: state.rollouts[id]?.listings ?? [:],
                    excluding: Set(progress.sources).union(excluded(for: progress, rollout: id)),
                    limit: configuration.planner.swarmPeers - listed)
                if !more.isEmpty {
                    progress.sources += more
                    morePeers = true
                }
            }
            // Growing byte counts are progress, not state: memory only (the next beat says them
            // again), so a download does not cost a durable write per beat. A new source
            // delivering is news.
            if progress.phase != before.phase || Set(progress.bytesBySource.keys) != Set(before.bytesBySource.keys) || morePeers
                || progress.reported != before.reported {
                record(.hostUpdated(rollout: id, host: agent.hostname, progress))
            } else {
                // Lease renewals stay in memory; a restarted HBS grants every lease afresh.
                state.setHost(id, agent.hostname, progress)
            }
            // Idle on the old version before it switched: the order was lost, or the agent was
            // restarted mid-upgrade (it resumes from its verified pieces). Again.
            let lost = beat.state == .idle && !atTarget && progress.phase.rank <= HostPhase.installing.rank
            if lost || morePeers {
                return order(for: progress, rollout: id, spec: spec)
            }
            return nil
        }
    }

    /// Whether a pending host's turn has come: the rollout runs, its batch is open, its backoff
    /// is over, and (`counting`, without a shared ledger) a slot is free. With a shared ledger
    /// (Redis) the ledger counts the slots of every HBS instance; alone, this engine's own
    /// count is the truth.
    private func mayAdmit(_ progress: HostProgress, rollout id: String, now: Int64, counting: Bool) -> Bool {
        guard let rollout = state.rollouts[id], rollout.phase == .running, let current = rollout.currentBatch else { return false }
        return progress.batch <= current && (progress.retryAt ?? 0) <= now
            && (!counting || rollout.activeCount < rollout.spec.maxConcurrent)
    }

    private func order(for progress: HostProgress, rollout id: String, spec: RolloutSpec) -> UpgradeOrder {
        UpgradeOrder(
            rolloutId: id, name: spec.name, version: spec.version, locator: spec.locator,
            sources: progress.sources, deadline: progress.deadline ?? 0,
            allowsDowngrade: state.rollouts[id]?.allowsDowngrade == true ? true : nil, fallbackSources: progress.fallbacks,
            seedShare: progress.seedShare)
    }

    /// Sources never to list for this host: those it reported, and peers enough hosts reported.
    private func excluded(for progress: HostProgress, rollout id: String) -> Set<String> {
        var excluded = Set(progress.reported ?? [])
        guard let rollout = state.rollouts[id] else { return excluded }
        let threshold = max(1, configuration.planner.quarantineReports)
        for (source, count) in rollout.reports where count >= threshold && planner.kind(of: source, spec: rollout.spec) == .peer {
            excluded.insert(source)
        }
        return excluded
    }

    /// A few dozen hosts that may serve `host` the rollout's release: the nearest first, then
    /// a random sample of the others.
    private mutating func peerCandidates(near host: AgentRecord, rollout id: String) -> [AgentRecord] {
        guard let spec = state.rollouts[id]?.spec, spec.peersMayServe else { return [] }
        if peerIndex?.rollout != id { peerIndex = buildPeerIndex(rollout: id, spec: spec) }
        let planner = configuration.planner
        let near = 2 * max(planner.nearPeers, planner.sourcesPerOrder, 4)
        let far = 2 * max(planner.swarmPeers, planner.sourcesPerOrder, 8)
        return (peerIndex?.candidates(near: host, nearLimit: near, farLimit: far) ?? []).compactMap { state.agents[$0] }
    }

    /// Whether HBS itself can vouch that `agent` serves the rollout's release, never on its
    /// beat's word alone: HBS ordered it to fetch the release in this rollout (in a swarm, a
    /// host serves its verified pieces while it fetches; otherwise only once done), or saw it
    /// run that version. Its beat must also say it holds the release (it serves only what it
    /// has); a claim with neither is ignored.
    func vouches(for agent: AgentRecord, in rollout: Rollout) -> Bool {
        let spec = rollout.spec
        let progress = rollout.hosts[agent.hostname]
        let ordered = progress.map { planner.isSwarm(spec) ? $0.phase.isActive || $0.phase == .done : $0.phase == .done } ?? false
        let runs = Self.same(agent.version, spec.version)
        guard ordered || runs else { return false }
        return (planner.isSwarm(spec) && ordered) || planner.serves(agent, name: spec.name, version: spec.version)
    }

    /// Every host HBS vouches for as a source of the rollout's release: one pass over the
    /// fleet, after a restart or a new rollout.
    private func buildPeerIndex(rollout id: String, spec: RolloutSpec) -> PeerIndex {
        var index = PeerIndex(rollout: id)
        guard let rollout = state.rollouts[id] else { return index }
        for agent in state.agents.values.sorted(by: { $0.hostname < $1.hostname }) where vouches(for: agent, in: rollout) {
            index.insert(agent)
        }
        return index
    }

    private mutating func fail(
        _ host: String, _ progress: HostProgress, in id: String, reason: String, now: Int64, ledger: (any AdmissionLedger)?
    ) {
        ledger?.release(host: host)
        var progress = progress
        progress.phase = .failed
        progress.failures += 1
        progress.reason = reason
        progress.leaseUntil = nil
        progress.retryAt = progress.attempts < configuration.maxAttempts
            ? now + configuration.retryBackoffSeconds << Int64(min(progress.failures - 1, 10)) : nil
        record(.hostUpdated(rollout: id, host: host, progress))
        guard let rollout = state.rollouts[id], rollout.phase == .running, rollout.failedHosts > rollout.spec.failureBudget else { return }
        record(.rolloutPhase(
            rollout: id, phase: .paused,
            reason: "failure budget exceeded: \(rollout.failedHosts) hosts failed, budget \(rollout.spec.failureBudget)", at: now))
    }

    // MARK: Time

    /// What time alone changes: expired leases and deadlines fail their hosts (freeing their
    /// slots), failed hosts come back after their backoff, a finished rollout completes; hosts
    /// unseen for `pruneAfterSeconds` are forgotten, finished rollouts past `rolloutHistory`
    /// dropped.
    public mutating func sweep(now: Int64, ledger: (any AdmissionLedger)? = nil) {
        forgetTheLongGone(now: now)
        dropOldRollouts()
        guard let rollout = state.activeRollout else { return }
        let id = rollout.id
        for (host, progress) in rollout.hosts.sorted(by: { $0.key < $1.key }) {
            if progress.phase.isActive, let lease = progress.leaseUntil, lease < now {
                // Beats may have gone to another instance: the shared ledger has the last word.
                switch ledger?.lease(of: host) {
                case .held(let until) where until >= now:
                    var renewed = progress
                    renewed.leaseUntil = until
                    state.setHost(id, host, renewed)
                    continue
                case .unknown:
                    continue
                default:
                    break
                }
                fail(host, progress, in: id, reason: "silent for over \(rollout.spec.leaseSeconds) s: lease expired", now: now, ledger: ledger)
            } else if progress.phase.isActive, let deadline = progress.deadline, deadline < now {
                fail(host, progress, in: id, reason: "did not confirm \(rollout.spec.version) within \(rollout.spec.deadlineSeconds) s", now: now, ledger: ledger)
            } else if progress.phase == .pending, (state.agents[host]?.lastSeen ?? 0) < now - configuration.absentAfterSeconds {
                var absent = progress
                absent.phase = .absent
                record(.hostUpdated(rollout: id, host: host, absent))
            } else if progress.phase == .failed, let retry = progress.retryAt, retry <= now, state.rollouts[id]?.phase == .running {
                var again = progress
                again.phase = .pending
                again.retryAt = nil
                // A retried host never reopens a batch that has moved on.
                again.batch = max(progress.batch, state.rollouts[id]?.currentBatch ?? progress.batch)
                record(.hostUpdated(rollout: id, host: host, again))
            }
        }
        if let current = state.rollouts[id], current.phase == .running, current.isFinished, !current.spec.isFalcon {
            record(.rolloutPhase(rollout: id, phase: .completed, reason: nil, at: now))
        }
    }

    /// Hosts unseen for `pruneAfterSeconds` (and in no active rollout) are forgotten.
    private mutating func forgetTheLongGone(now: Int64) {
        guard let limit = configuration.pruneAfterSeconds else { return }
        let active = state.activeRollout
        for (host, agent) in state.agents where agent.lastSeen < now - limit && active?.hosts[host] == nil {
            record(.hostForgotten(host: host))
        }
    }

    /// Finished rollouts beyond the newest `rolloutHistory` are dropped.
    private mutating func dropOldRollouts() {
        let finished = state.rollouts.values.filter { !$0.phase.isActive }
        guard finished.count > configuration.rolloutHistory else { return }
        let byAge = finished.sorted { ($0.createdAt, Int($0.id.dropFirst()) ?? 0) < ($1.createdAt, Int($1.id.dropFirst()) ?? 0) }
        for rollout in byAge.prefix(finished.count - max(0, configuration.rolloutHistory)) {
            record(.rolloutDropped(id: rollout.id))
        }
    }

    /// What a beat from one host can change: its agent record, its progress in the active
    /// rollout, and that rollout's phase (a failure can pause it). Small, unlike a copy of the
    /// whole state, which would make every beat copy the fleet.
    public struct Checkpoint: Sendable {
        let host: String
        let agent: AgentRecord?
        let rollout: String?
        let progress: HostProgress?
        let phase: RolloutPhase?
        let pauseReason: String?
        let finishedAt: Int64?
    }

    public func checkpoint(for host: String) -> Checkpoint {
        let id = state.activeRolloutID
        return Checkpoint(
            host: host, agent: state.agents[host], rollout: id, progress: id.flatMap { state.rollouts[$0]?.hosts[host] },
            phase: id.flatMap { state.rollouts[$0]?.phase }, pauseReason: id.flatMap { state.rollouts[$0]?.pauseReason },
            finishedAt: id.flatMap { state.rollouts[$0]?.finishedAt })
    }

    /// Puts back what a beat changed, and forgets its events.
    public mutating func restore(_ checkpoint: Checkpoint) {
        peerIndex = nil
        state.agents[checkpoint.host] = checkpoint.agent
        if let id = checkpoint.rollout, let phase = checkpoint.phase {
            state.rollouts[id]?.set(checkpoint.host, checkpoint.progress)
            state.rollouts[id]?.phase = phase
            state.rollouts[id]?.pauseReason = checkpoint.pauseReason
            state.rollouts[id]?.finishedAt = checkpoint.finishedAt
        }
        outbox = []
    }

    /// Brings in changes made elsewhere (other HBS instances, through a shared store); `body`
    /// says whether more than one host's progress changed (the peer index is then rebuilt at
    /// the next admission, not on every beat).
    public mutating func update(_ body: (inout FleetState) -> Bool) {
        if body(&state) { peerIndex = nil }
    }

    /// After a restart: every admitted host gets a fresh lease and every agent counts as just
    /// seen, since beats were not journaled.
    public mutating func renewLeases(now: Int64) {
        for name in state.agents.keys { state.agents[name]?.lastSeen = now }
        for rollout in state.rollouts.values where rollout.phase.isActive {
            for (host, progress) in rollout.hosts where progress.phase.isActive {
                var renewed = progress
                renewed.leaseUntil = now + rollout.spec.leaseSeconds
                state.setHost(rollout.id, host, renewed)
            }
        }
    }

    static func same(_ a: String, _ b: String) -> Bool {
        if let x = SemanticVersion(a), let y = SemanticVersion(b) { return x == y }
        return a == b
    }
}

extension FleetState {
    /// A change not worth a journal entry (a lease renewal): memory only.
    mutating func setHost(_ rollout: String, _ host: String, _ progress: HostProgress) {
        rollouts[rollout]?.set(host, progress)
    }
}

extension AgentRecord {
    /// Same host, address, version, labels, peer port and held releases: only the beat's
    /// time and state differ (a download's growing piece count is no news, its first piece is).
    func sameIdentity(as other: AgentRecord) -> Bool {
        ip == other.ip && version == other.version && labels == other.labels && peerPort == other.peerPort
            && held.map(\.servingKey) == other.held.map(\.servingKey)
    }
}

extension HeldRelease {
    /// What a peer can serve of it: whole, some pieces, or nothing yet.
    var servingKey: String { "\(name)/\(version)/\(complete ? "whole" : (verifiedPieces ?? 0) > 0 ? "pieces" : "none")" }
}

extension RolloutSpec {
    var isFalcon: Bool { if case .falcon = locator { true } else { false } }
}
