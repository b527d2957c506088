import Wire

/// The rollout engine: admits hosts on their beats under the concurrency limit, batch after
/// batch, hands each its sources, follows it to confirmation or failure, frees silent hosts'
/// slots, pauses at the failure budget. Pure and synchronous: time comes in as `now`, and
/// every change is a `FleetEvent` left in `outbox` for the store to make durable.
public struct RolloutEngine: Sendable {
    public internal(set) var state: FleetState
    public let configuration: EngineConfiguration
    let planner: SourcePlanner
    /// Events applied since the last `takeOutbox()`.
    var outbox: [FleetEvent] = []
    /// Who can serve the active rollout's release; rebuilt when missing.
    var peerIndex: PeerIndex?
    /// When the sweep next looks for hosts gone long enough to forget.
    var nextPruneCheck: Int64 = 0
    /// When the sweep next looks at every host of the active rollout for silent pending ones.
    var nextAbsenceCheck: Int64 = 0

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

    /// Applies `event` and keeps it for the store: the one way the engine changes its state.
    mutating func record(_ event: FleetEvent) {
        for (rollout, note) in RolloutEvent.derive(event, before: state) { outbox.append(.noted(rollout: rollout, note)) }
        state.apply(event)
        outbox.append(event)
    }

    // MARK: Operator actions

    /// Starts a rollout to every known host the selector picks that runs an older version
    /// (or any other version, for a rollback), canary first, then batches.
    /// `ledger`: where several instances share the fleet, whose shared last-seen times count
    /// hosts that beat elsewhere as present.
    @discardableResult
    public mutating func create(
        _ spec: RolloutSpec, now: Int64, allowsDowngrade: Bool = false, ledger: (any AdmissionLedger)? = nil
    ) throws(EngineError) -> Rollout {
        do { try spec.validate() } catch { throw .invalid(error) }
        if let active = state.activeRollout {
            throw .conflict("rollout \(active.id) (\(active.spec.name) \(active.spec.version)) is \(active.phase.rawValue); abort it first")
        }
        confirmSilence(of: state.agents.values.filter { $0.lastSeen < now - configuration.absentAfterSeconds }.map(\.hostname), ledger: ledger)
        var rollout = Rollout(
            id: "r\(state.nextRolloutNumber)", spec: spec, phase: .running, createdAt: now, allowsDowngrade: allowsDowngrade)
        // Hosts gone silent are left out; they join as latecomers if they come back. A fleet
        // runs a handful of versions: each is compared with the target once, not once a host.
        var isTarget: [String: Bool] = [:]
        var targets: [(hostname: String, version: String)] = []
        for agent in state.agents.values where agent.lastSeen >= now - configuration.absentAfterSeconds {
            guard rollout.selects(hostname: agent.hostname, labels: agent.labels) else { continue }
            let target = isTarget[agent.version] ?? rollout.isTarget(version: agent.version)
            isTarget[agent.version] = target
            if target { targets.append((agent.hostname, agent.version)) }
        }
        targets.sort { $0.hostname < $1.hostname }
        let canary = min(spec.canary, targets.count)
        let sizes = (canary > 0 ? [canary] : []) + spec.batches.sizes(for: targets.count - canary)
        var hosts: [String: HostProgress] = .init(minimumCapacity: targets.count)
        var next = targets.makeIterator()
        for (batch, size) in sizes.enumerated() {
            for _ in 0..<size {
                guard let agent = next.next() else { break }
                hosts[agent.hostname] = HostProgress(phase: .pending, batch: batch, fromVersion: agent.version)
            }
        }
        rollout.replaceHosts(hosts)
        record(.rolloutCreated(rollout))
        return rollout
    }

    public mutating func pause(_ id: String, now: Int64, reason: String = "paused by operator") throws(EngineError) -> Rollout {
        let rollout = try find(id)
        guard rollout.phase == .running else { throw .conflict("rollout \(id) is \(rollout.phase.rawValue), not running") }
        record(.rolloutPhase(rollout: id, phase: .paused, reason: reason, at: now))
        return state.rollouts[id]!
    }

    public mutating func resume(_ id: String, now: Int64, reason: String? = nil) throws(EngineError) -> Rollout {
        let rollout = try find(id)
        guard rollout.phase == .paused else { throw .conflict("rollout \(id) is \(rollout.phase.rawValue), not paused") }
        record(.rolloutPhase(rollout: id, phase: .running, reason: reason, at: now))
        return state.rollouts[id]!
    }

    /// Stops admitting; hosts already upgrading finish or roll back on their own.
    public mutating func abort(_ id: String, now: Int64, reason: String? = nil) throws(EngineError) -> Rollout {
        let rollout = try find(id)
        guard rollout.phase.isActive else { throw .conflict("rollout \(id) is already \(rollout.phase.rawValue)") }
        record(.rolloutPhase(rollout: id, phase: .aborted, reason: reason, at: now))
        return state.rollouts[id]!
    }

    /// Aborts `id` if active and starts a rollout of its hosts back to the version most of
    /// them ran before it: the one explicit way to go down a version.
    public mutating func rollback(_ id: String, now: Int64, ledger: (any AdmissionLedger)? = nil) throws(EngineError) -> Rollout {
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
        if rollout.phase.isActive { _ = try abort(id, now: now, reason: "rolled back") }
        var spec = rollout.spec
        spec.version = previous
        // The pinned manifest was the new version's; the old one is found on the sources.
        if manifestURL != nil { spec.locator = .fledge(manifestURL: nil) }
        spec.canary = 0
        spec.selector = .hosts(touched.filter { $0.value.fromVersion == previous }.keys.sorted())
        let back = try create(spec, now: now, allowsDowngrade: true, ledger: ledger)
        outbox.append(.noted(rollout: id, RolloutEvent(.rolledBack, reason: "rollout \(back.id) returns \(back.hosts.count) hosts to \(previous)")))
        return back
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

    // MARK: State from elsewhere

    /// Brings in changes made elsewhere (other HBS instances, through a shared store); `body`
    /// says what it touched. The peer index follows hosts one by one, and is rebuilt at the
    /// next admission only when more changed or a member no longer qualifies.
    @discardableResult
    public mutating func update(_ body: (inout FleetState) -> OutsideChange) -> OutsideChange {
        let change = body(&state)
        switch change {
        case .nothing: break
        case .everything: peerIndex = nil
        case .hosts(let names): followPeers(names)
        }
        return change
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

    /// Whether two version strings name one version (semantic versions compared as such).
    static func same(_ a: String, _ b: String) -> Bool {
        if let x = SemanticVersion(a), let y = SemanticVersion(b) { return x == y }
        return a == b
    }
}
