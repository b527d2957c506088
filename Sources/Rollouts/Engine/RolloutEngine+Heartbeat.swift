import Wire

/// A beat: the agent remembered, its host moved along the active rollout.
extension RolloutEngine {
    /// Takes a beat: remembers the agent, moves its host forward in the active rollout, and
    /// answers with an order when the host is admitted (again, if it missed the first).
    public mutating func beat(_ beat: HeartbeatRequest, now: Int64, ledger: (any AdmissionLedger)? = nil) -> HeartbeatReply {
        let agent = AgentRecord(beat, now: now)
        if !remember(agent) { record(.agentSeen(agent)) }
        // By id, never holding a copy of the rollout while it changes: a held copy would make
        // every change copy the whole host table.
        guard let id = state.activeRolloutID else {
            return HeartbeatReply(nextBeatSeconds: configuration.slowBeatSeconds)
        }
        if joinsPeerIndex(agent, rollout: id) { peerIndex?.insert(agent) }
        let order = step(agent, beat: beat, rollout: id, now: now, ledger: ledger)
        return HeartbeatReply(order: order, nextBeatSeconds: beatInterval(for: agent.hostname, rollout: id))
    }

    /// Keeps `agent` as its host's record when only what a beat says every time changed (its
    /// time, state, error, starts): not worth a journal entry. False when it is new, or its
    /// identity changed (`sameIdentity`): that is an event.
    mutating func remember(_ agent: AgentRecord) -> Bool {
        guard let known = state.agents[agent.hostname], known.sameIdentity(as: agent) else { return false }
        state.agents[agent.hostname] = agent
        return true
    }

    /// Whether `agent`'s beat adds it to the peer index of rollout `id`: HBS vouches for it
    /// and the index, built before, does not list it yet.
    func joinsPeerIndex(_ agent: AgentRecord, rollout id: String) -> Bool {
        guard let index = peerIndex, index.rollout == id, !index.members.contains(agent.hostname), agent.peerURL != nil,
              let rollout = state.rollouts[id] else { return false }
        return vouches(for: agent, in: rollout)
    }

    /// Whether `agent`, outside rollout `id`, joins it on its beat: it came (back) mid-rollout,
    /// the selector picks it and it runs a version the rollout replaces. (Asked through the
    /// optional: a copy of the rollout held here would make the record that follows copy its
    /// whole host table.)
    func joinsAsLatecomer(_ agent: AgentRecord, rollout id: String) -> Bool {
        guard let spec = state.rollouts[id]?.spec, !agent.runs(spec.version) else { return false }
        return state.rollouts[id]?.selects(hostname: agent.hostname, labels: agent.labels) == true
            && state.rollouts[id]?.isTarget(version: agent.version) == true
    }

    /// When `host` should beat next: fast while it upgrades; paced while it waits for a slot
    /// (or a retry) in a running rollout; slow (long-polling) when it has nothing to wait for.
    func beatInterval(for host: String, rollout id: String) -> Double {
        guard let rollout = state.rollouts[id], let progress = rollout.hosts[host] else { return configuration.slowBeatSeconds }
        if progress.phase.isActive { return configuration.fastBeatSeconds }
        let waiting = progress.phase == .pending || (progress.phase == .failed && progress.retryAt != nil)
        guard waiting, rollout.phase == .running else { return configuration.slowBeatSeconds }
        return configuration.pacedBeatSeconds(waitingHosts: rollout.waitingHosts)
    }

    /// Moves a host that is part of the rollout one beat further; an order when it is admitted
    /// now, or again when it lost the first.
    private mutating func step(
        _ agent: AgentRecord, beat: HeartbeatRequest, rollout id: String, now: Int64, ledger: (any AdmissionLedger)?
    ) -> UpgradeOrder? {
        guard let spec = state.rollouts[id]?.spec else { return nil }
        let atTarget = agent.runs(spec.version)
        guard var progress = state.rollouts[id]?.hosts[agent.hostname] else {
            // A host that joins mid-rollout goes into the last batch.
            guard joinsAsLatecomer(agent, rollout: id) else { return nil }
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
            return admit(agent, progress, beat: beat, atTarget: atTarget, rollout: id, spec: spec, now: now, ledger: ledger)
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
}
