import Wire

/// Everything HBS decides from: agents as last seen, and rollouts with every host's progress.
/// It changes only by applying `FleetEvent`s, the same way live and when a store replays them.
public struct FleetState: Codable, Sendable, Equatable {
    public var agents: [String: AgentRecord] = [:]
    public var rollouts: [String: Rollout] = [:]
    /// The number in the next rollout's id (`r7`).
    public var nextRolloutNumber = 1

    public init() {}

    /// The rollout that is running or paused, if any: one at a time, since every rollout
    /// upgrades the agent itself.
    public var activeRollout: Rollout? { activeRolloutID.flatMap { rollouts[$0] } }

    public var activeRolloutID: String? { rollouts.first { $0.value.phase.isActive }?.key }

    /// Applies one change. Idempotent: applying the same events again gives the same state.
    public mutating func apply(_ event: FleetEvent) {
        switch event {
        case .agentSeen(let agent):
            agents[agent.hostname] = agent
        case .rolloutCreated(let rollout):
            rollouts[rollout.id] = rollout
            // Idempotent, so replaying a journal over a snapshot that has it changes nothing.
            if let number = Int(rollout.id.dropFirst()) { nextRolloutNumber = max(nextRolloutNumber, number + 1) }
        case .hostUpdated(let id, let host, let progress):
            rollouts[id]?.set(host, progress)
        case .rolloutPhase(let id, let phase, let reason, let at):
            rollouts[id]?.phase = phase
            rollouts[id]?.pauseReason = phase == .paused ? reason : nil
            if phase == .aborted || phase == .completed { rollouts[id]?.finishedAt = at }
        }
    }
}

/// One change to the fleet state: what the journal keeps, what replay applies.
public enum FleetEvent: Codable, Sendable, Equatable {
    /// A new agent, or one whose identity, version or held releases changed.
    case agentSeen(AgentRecord)
    case rolloutCreated(Rollout)
    case hostUpdated(rollout: String, host: String, HostProgress)
    case rolloutPhase(rollout: String, phase: RolloutPhase, reason: String?, at: Int64)
}
