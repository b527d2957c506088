import Wire

/// Beats that change nothing but the time a host was last seen: most of a fleet's beats, most
/// of the time. The engine says which hosts beat that way and takes their times in bulk, so
/// whoever holds it (the control plane's actor) can answer those beats on any core without
/// taking a turn, and the engine stays the one place that decides.
extension RolloutEngine {
    /// The interval to answer `host`'s beats with, when a beat from it with the identity its
    /// record has (`AgentRecord.sameIdentity`) changes nothing but that record's time and
    /// state, and keeps doing so until an event touches the host or a rollout (created,
    /// paused, resumed, completed, dropped) or state comes in from elsewhere: no rollout is
    /// active, or the host is done in it, or outside it for good. Nil when its beat may do
    /// more (admit it, renew its lease, move it on, add it to the rollout or its peer index).
    public func quietInterval(for host: String) -> Double? {
        guard let agent = state.agents[host] else { return nil }
        guard let id = state.activeRolloutID else { return configuration.slowBeatSeconds }
        switch state.rollouts[id]?.hosts[host]?.phase {
        case .done: break
        case nil: if joinsAsLatecomer(agent, rollout: id) { return nil }
        default: return nil  // most beats taken on the actor during a rollout: asked first
        }
        return joinsPeerIndex(agent, rollout: id) ? nil : beatInterval(for: host, rollout: id)
    }

    /// Takes the records of beats answered without the engine (`quietInterval`), as `beat`
    /// would have kept them: a record whose host is gone, or whose identity changed since
    /// (a later beat, taken here), is left out, and so is one older than the host's record.
    public mutating func noteQuietBeats(_ agents: some Sequence<AgentRecord>) {
        for agent in agents where (state.agents[agent.hostname]?.lastSeen ?? .max) <= agent.lastSeen {
            _ = remember(agent)
        }
    }
}
