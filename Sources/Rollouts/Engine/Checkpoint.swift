extension RolloutEngine {
    /// What a beat, an enrolment or forgetting one host can change: its agent record and
    /// credential, its progress in the active rollout, and that rollout's phase (a failure can
    /// pause it). Small, unlike a copy of the whole state, which would make every such change
    /// copy the fleet (100,000 enrolments took minutes that way).
    public struct Checkpoint: Sendable {
        let host: String
        let agent: AgentRecord?
        let credential: String?
        let rollout: String?
        let progress: HostProgress?
        let phase: RolloutPhase?
        let pauseReason: String?
        let finishedAt: Int64?
    }

    public func checkpoint(for host: String) -> Checkpoint {
        let id = state.activeRolloutID
        return Checkpoint(
            host: host, agent: state.agents[host], credential: state.credentials[host], rollout: id, progress: id.flatMap { state.rollouts[$0]?.hosts[host] },
            phase: id.flatMap { state.rollouts[$0]?.phase }, pauseReason: id.flatMap { state.rollouts[$0]?.pauseReason },
            finishedAt: id.flatMap { state.rollouts[$0]?.finishedAt })
    }

    /// Puts back what a beat changed, and forgets its events.
    public mutating func restore(_ checkpoint: Checkpoint) {
        peerIndex = nil
        state.agents[checkpoint.host] = checkpoint.agent
        state.credentials[checkpoint.host] = checkpoint.credential
        if let id = checkpoint.rollout, let phase = checkpoint.phase {
            state.rollouts[id]?.set(checkpoint.host, checkpoint.progress)
            state.rollouts[id]?.phase = phase
            state.rollouts[id]?.pauseReason = checkpoint.pauseReason
            state.rollouts[id]?.finishedAt = checkpoint.finishedAt
        }
        outbox = []
    }
}
