extension RolloutEngine {
    /// What time alone changes: expired leases and deadlines fail their hosts (freeing their
    /// slots), failed hosts come back after their backoff, a finished rollout completes; hosts
    /// unseen for `pruneAfterSeconds` are forgotten, finished rollouts past `rolloutHistory`
    /// dropped.
    public mutating func sweep(now: Int64, ledger: (any AdmissionLedger)? = nil) {
        forgetTheLongGone(now: now, ledger: ledger)
        dropOldRollouts()
        guard let (id, spec, due) = hostsDue(now: now) else { return }
        confirmSilence(of: due.filter { $0.2 == .absent }.map(\.0), ledger: ledger)
        for (host, progress, what) in due {
            switch what {
            case .leaseExpired:
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
                fail(host, progress, in: id, reason: "silent for over \(spec.leaseSeconds) s: lease expired", now: now, ledger: ledger)
            case .deadlinePassed:
                fail(host, progress, in: id, reason: "did not confirm \(spec.version) within \(spec.deadlineSeconds) s", now: now, ledger: ledger)
            case .absent:
                guard (state.agents[host]?.lastSeen ?? 0) < now - configuration.absentAfterSeconds else { continue }  // beat elsewhere
                var absent = progress
                absent.phase = .absent
                record(.hostUpdated(rollout: id, host: host, absent))
            case .retryDue:
                guard state.rollouts[id]?.phase == .running else { continue }
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

    /// What time has changed for a host of the active rollout.
    enum SweepAction {
        case leaseExpired, deadlinePassed, absent, retryDue
    }

    /// What time has changed for `host` at `now`, if anything: the one statement of the rules
    /// a sweep applies.
    private func sweepAction(_ host: String, _ progress: HostProgress, now: Int64) -> SweepAction? {
        if progress.phase.isActive {
            if let lease = progress.leaseUntil, lease < now { return .leaseExpired }
            if let deadline = progress.deadline, deadline < now { return .deadlinePassed }
        } else if progress.phase == .pending, (state.agents[host]?.lastSeen ?? 0) < now - configuration.absentAfterSeconds {
            return .absent
        } else if progress.phase == .failed, let retry = progress.retryAt, retry <= now {
            return .retryDue
        }
        return nil
    }

    /// The active rollout's hosts that time has changed something for, with what, in name
    /// order: a deterministic sweep that sorts only these (at 100,000 hosts, sorting them all
    /// was most of a sweep's cost) and holds no copy of the rollout while it changes the state
    /// (a held copy would make the first change copy the whole host table). Every second it
    /// looks at the hosts time can change within seconds (upgrading, or waiting for a retry:
    /// `maxConcurrent` or so, not the fleet); every `absenceCheckSeconds` at every host, for
    /// pending ones gone silent (absence is judged in minutes).
    private mutating func hostsDue(now: Int64) -> (id: String, spec: RolloutSpec, due: [(String, HostProgress, SweepAction)])? {
        guard let id = state.activeRolloutID, let rollout = state.rollouts[id] else { return nil }
        let due: [(String, HostProgress, SweepAction)]
        if now >= nextAbsenceCheck {
            nextAbsenceCheck = now + Self.absenceCheckSeconds
            due = rollout.hosts.compactMap { host, progress in sweepAction(host, progress, now: now).map { (host, progress, $0) } }
        } else {
            due = rollout.timedHosts.compactMap { host in
                rollout.hosts[host].flatMap { progress in sweepAction(host, progress, now: now).map { (host, progress, $0) } }
            }
        }
        return (id, rollout.spec, due.sorted { $0.0 < $1.0 })
    }

    /// How often a sweep looks at every host of the active rollout for pending ones gone silent.
    static let absenceCheckSeconds: Int64 = 10

    /// Hosts unseen for `pruneAfterSeconds` (and in no active rollout) are forgotten: looked
    /// for once a minute, not at every sweep (a pass over every agent, for a limit in days).
    private mutating func forgetTheLongGone(now: Int64, ledger: (any AdmissionLedger)?) {
        guard let limit = configuration.pruneAfterSeconds, now >= nextPruneCheck else { return }
        nextPruneCheck = now + 60
        let active = state.activeRolloutID
        func gone() -> [String] {
            state.agents.compactMap { host, agent in
                agent.lastSeen < now - limit && active.flatMap { state.rollouts[$0]?.hosts[host] } == nil ? host : nil
            }
        }
        let silent = gone()
        guard !silent.isEmpty else { return }
        confirmSilence(of: silent, ledger: ledger)
        for host in gone().sorted() { record(.hostForgotten(host: host)) }
    }

    /// Before acting on hosts this engine has not seen beat for long, asks the shared ledger
    /// when they last beat at any instance (the others' beats are not this engine's to see).
    mutating func confirmSilence(of hosts: [String], ledger: (any AdmissionLedger)?) {
        guard let ledger, !hosts.isEmpty else { return }
        for (host, seen) in ledger.lastSeen(of: hosts) where (state.agents[host]?.lastSeen ?? .max) < seen {
            state.agents[host]?.lastSeen = seen
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
}
