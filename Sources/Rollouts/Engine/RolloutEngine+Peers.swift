import Wire

/// Who may serve whom: peers HBS vouches for, near ones first, minus the sources reported.
extension RolloutEngine {
    /// Sources never to list for this host: those it reported, and peers enough hosts reported.
    func excluded(for progress: HostProgress, rollout id: String) -> Set<String> {
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
    mutating func peerCandidates(near host: AgentRecord, rollout id: String) -> [AgentRecord] {
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
    func buildPeerIndex(rollout id: String, spec: RolloutSpec) -> PeerIndex {
        var index = PeerIndex(rollout: id)
        guard let rollout = state.rollouts[id] else { return index }
        for agent in state.agents.values.sorted(by: { $0.hostname < $1.hostname }) where vouches(for: agent, in: rollout) {
            index.insert(agent)
        }
        return index
    }

    /// Keeps the peer index up to date with hosts whose records or progress changed elsewhere:
    /// one that now qualifies joins; one that no longer does makes the index be rebuilt.
    mutating func followPeers(_ names: Set<String>) {
        guard let index = peerIndex, let rollout = state.rollouts[index.rollout], rollout.phase.isActive else { return }
        for name in names {
            let agent = state.agents[name]
            if let agent, vouches(for: agent, in: rollout) {
                peerIndex?.insert(agent)
            } else if index.members.contains(name) {
                peerIndex = nil
                return
            }
        }
    }
}
