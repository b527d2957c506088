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

    /// Takes in beats answered without the engine (`quietInterval`): each host's record gets
    /// the beat's time and what a beat says every time, in place (no record is built or
    /// replaced). A beat no newer than the host's record is left out: the record was taken
    /// from a later beat (perhaps one with a new identity, which ended the quiet), or in the
    /// same second. So is a host gone since.
    public mutating func noteQuietBeats(_ beats: some Sequence<QuietBeat>) {
        for beat in beats {
            guard let index = state.agents.index(forKey: beat.host), state.agents.values[index].lastSeen < beat.at else { continue }
            beat.apply(to: &state.agents.values[index])
        }
    }
}

/// A beat answered without the engine: what it says that its host's record keeps (its
/// identity was checked against the record when it was answered).
public struct QuietBeat: Sendable {
    public let host: String
    public let at: Int64
    let state: AgentState
    let error: String?
    let starts: Int?

    public init(_ beat: HeartbeatRequest, at: Int64) {
        host = beat.hostname
        self.at = at
        state = beat.state
        error = beat.error
        starts = beat.starts
    }

    /// `agent` as `RolloutEngine.remember` would have kept it from this beat.
    func apply(to agent: inout AgentRecord) {
        agent.lastSeen = at
        agent.state = state
        agent.error = error
        agent.starts = starts
    }
}
