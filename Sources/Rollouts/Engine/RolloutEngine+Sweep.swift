extension RolloutEngine {
    /// What time alone changes: expired leases and deadlines fail their hosts (freeing their
    /// slots), failed hosts come back after their backoff, a finished rollout completes; hosts
    /// unseen for `pruneAfterSeconds` are forgotten, finished rollouts past `rolloutHistory`
    /// dropped.
    public mutating func sweep(now: Int64, ledger: (any AdmissionLedger)? = nil) {
        forgetTheLongGone(now: now)
        dropOldRollouts()
        guard let (id, spec, due) = hostsDue(now: now) else { return }
        let absentBefore = now - configuration.absentAfterSeconds
        for (host, progress) in due {
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
                fail(host, progress, in: id, reason: "silent for over \(spec.leaseSeconds) s: lease expired", now: now, ledger: ledger)
            } else if progress.phase.isActive, let deadline = progress.deadline, deadline < now {
                fail(host, progress, in: id, reason: "did not confirm \(spec.version) within \(spec.deadlineSeconds) s", now: now, ledger: ledger)
            } else if progress.phase == .pending, (state.agents[host]?.lastSeen ?? 0) < absentBefore {
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

    /// The active rollout's hosts that time has changed something for (a lease or deadline run
    /// out, unseen long enough to be absent, a retry due), in name order: a deterministic sweep
    /// that sorts only these (at 100,000 hosts, sorting them all was most of a sweep's cost) and
    /// holds no copy of the rollout while it changes the state (a held copy would make the first
    /// change copy the whole host table).
    private func hostsDue(now: Int64) -> (id: String, spec: RolloutSpec, due: [(key: String, value: HostProgress)])? {
        guard let id = state.activeRolloutID, let rollout = state.rollouts[id] else { return nil }
        let absentBefore = now - configuration.absentAfterSeconds
        let due = rollout.hosts.filter { host, progress in
            switch progress.phase {
            case .admitted, .downloading, .installing, .restarting, .confirming:
                (progress.leaseUntil.map { $0 < now } ?? false) || (progress.deadline.map { $0 < now } ?? false)
            case .pending: (state.agents[host]?.lastSeen ?? 0) < absentBefore
            case .failed: progress.retryAt.map { $0 <= now } ?? false
            case .done, .absent: false
            }
        }
        return (id, rollout.spec, due.sorted { $0.key < $1.key })
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
}
