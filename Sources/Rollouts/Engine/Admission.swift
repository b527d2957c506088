import Wire

/// Admission, the one place a host is let in: a pending host is admitted when its batch is
/// open, its backoff over, a slot free (here, or in the shared ledger), and the planner finds it
/// sources; it is then ordered with them.
extension RolloutEngine {
    /// A pending host's beat: done if it runs the target already, admitted if its turn came.
    mutating func admit(
        _ agent: AgentRecord, _ progress: HostProgress, beat: HeartbeatRequest, atTarget: Bool, rollout id: String,
        spec: RolloutSpec, now: Int64, ledger: (any AdmissionLedger)?
    ) -> UpgradeOrder? {
        var progress = progress
        if atTarget {
            progress.phase = .done
            record(.hostUpdated(rollout: id, host: agent.hostname, progress))
            return nil
        }
        // Never a host that is busy with an upgrade (of an aborted rollout, or one whose
        // lease ran out while it was installing): it finishes first.
        guard beat.state == .idle || beat.state == .failed else { return nil }
        guard mayAdmit(progress, rollout: id, now: now) else { return nil }
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
    }

    /// Whether a pending host's turn has come: the rollout runs, its batch is open, its backoff
    /// is over, and a slot is free as this engine counts them. Alone, its count is the truth.
    /// With a shared ledger (Redis) the ledger, which counts every instance's slots, has the
    /// last word; this count, kept within a sync of the others' changes, only spares it the
    /// question while every slot is taken (at 100,000 hosts waiting, most beats).
    func mayAdmit(_ progress: HostProgress, rollout id: String, now: Int64) -> Bool {
        guard let rollout = state.rollouts[id], rollout.phase == .running, let current = rollout.currentBatch else { return false }
        return progress.batch <= current && (progress.retryAt ?? 0) <= now && rollout.activeCount < rollout.spec.maxConcurrent
    }

    /// The order a host admitted (or re-sent its order) gets.
    func order(for progress: HostProgress, rollout id: String, spec: RolloutSpec) -> UpgradeOrder {
        UpgradeOrder(
            rolloutId: id, name: spec.name, version: spec.version, locator: spec.locator,
            sources: progress.sources, deadline: progress.deadline ?? 0,
            allowsDowngrade: state.rollouts[id]?.allowsDowngrade == true ? true : nil, fallbackSources: progress.fallbacks,
            seedShare: progress.seedShare)
    }
}
