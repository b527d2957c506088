import Wire

/// Everything HBS decides from: agents as last seen, and rollouts with every host's progress.
/// It changes only by applying `FleetEvent`s, the same way live and when a store replays them.
public struct FleetState: Codable, Sendable, Equatable {
    public var agents: [String: AgentRecord] = [:]
    public var rollouts: [String: Rollout] = [:]
    /// The number in the next rollout's id (`r7`).
    public var nextRolloutNumber = 1
    /// Each enrolled host's credential: the SHA-256 (hex) of the secret it beats with.
    public var credentials: [String: String] = [:]

    public init() {}

    private enum CodingKeys: String, CodingKey { case agents, rollouts, nextRolloutNumber, credentials }

    /// Snapshots written before hosts had credentials have none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        agents = try container.decode([String: AgentRecord].self, forKey: .agents)
        rollouts = try container.decode([String: Rollout].self, forKey: .rollouts)
        nextRolloutNumber = try container.decode(Int.self, forKey: .nextRolloutNumber)
        credentials = try container.decodeIfPresent([String: String].self, forKey: .credentials) ?? [:]
    }

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
        case .hostEnrolled(let host, let digest):
            credentials[host] = digest
        case .hostForgotten(let host):
            credentials[host] = nil
            agents[host] = nil
        case .rolloutDropped(let id):
            rollouts[id] = nil
        case .noted:
            break  // what happened, for operators: the store keeps it apart from the state
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
    /// A host enrolled: `digest` is the SHA-256 (hex) of its secret.
    case hostEnrolled(host: String, digest: String)
    /// A host's binding and record are gone (an admin, or unseen for too long): its name may
    /// enrol again.
    case hostForgotten(host: String)
    /// A finished rollout past the history kept.
    case rolloutDropped(id: String)
    /// Something an operator follows happened to a rollout (`RolloutEvent`); it changes no
    /// state, and stores keep it in the rollout's own event log, not in their journal.
    case noted(rollout: String, RolloutEvent)
}

extension FleetState {
    /// A change not worth a journal entry (a lease renewal): memory only.
    mutating func setHost(_ rollout: String, _ host: String, _ progress: HostProgress) {
        rollouts[rollout]?.set(host, progress)
    }
}
