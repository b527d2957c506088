import Wire

/// What happened to a rollout, as an operator follows it: `GET /v1/rollouts/{id}/events`
/// streams these, `fledgectl rollout watch` and the dashboard draw them, the log says them.
/// Derived from the engine's state changes (`derive`), so every store and every instance
/// records the same story; a beat that changes nothing an operator cares about adds nothing.
public struct RolloutEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case created, batchStarted, admitted, failed, done, paused, resumed, aborted, rolledBack, completed
    }

    public var kind: Kind
    /// Unix seconds; stamped by HBS when the change is stored.
    public var at: Int64
    public var host: String?
    public var batch: Int?
    /// Why (a failure, a pause: the failure budget or who asked), or what (a rollback's target).
    public var reason: String?

    public init(_ kind: Kind, at: Int64 = 0, host: String? = nil, batch: Int? = nil, reason: String? = nil) {
        self.kind = kind
        self.at = at
        self.host = host
        self.batch = batch
        self.reason = reason
    }

    /// True for the events after which nothing more happens to the rollout.
    public var isFinal: Bool { kind == .aborted || kind == .completed }

    /// One line for the log and for terminals.
    public var line: String {
        let subject = host.map { "\($0) " } ?? ""
        let batchText = batch.map { kind == .batchStarted ? "batch \($0)" : " (batch \($0))" } ?? ""
        switch kind {
        case .batchStarted: return batchText + " started"
        default: return subject + kind.rawValue + (kind == .admitted || kind == .done ? batchText : "") + (reason.map { ": \($0)" } ?? "")
        }
    }

    /// What `event` means to an operator, given the state just before it: the rollout each
    /// event belongs to, and the event (time not yet stamped).
    static func derive(_ event: FleetEvent, before state: FleetState) -> [(rollout: String, event: RolloutEvent)] {
        switch event {
        case .rolloutCreated(let rollout):
            guard state.rollouts[rollout.id] == nil else { return [] }
            let what = "\(rollout.spec.name) \(rollout.spec.version) to \(rollout.hosts.count) hosts"
            return [(rollout.id, RolloutEvent(.created, reason: rollout.allowsDowngrade ? "a rollback: \(what)" : what))]
        case .hostUpdated(let id, let host, let progress):
            guard let rollout = state.rollouts[id], rollout.hosts[host]?.phase != progress.phase else { return [] }
            switch progress.phase {
            case .admitted:
                var events: [(String, RolloutEvent)] = []
                if !rollout.hasStarted(batch: progress.batch) { events.append((id, RolloutEvent(.batchStarted, batch: progress.batch))) }
                events.append((id, RolloutEvent(.admitted, host: host, batch: progress.batch)))
                return events
            case .failed: return [(id, RolloutEvent(.failed, host: host, batch: progress.batch, reason: progress.reason))]
            case .done: return [(id, RolloutEvent(.done, host: host, batch: progress.batch))]
            default: return []
            }
        case .rolloutPhase(let id, let phase, let reason, _):
            guard let before = state.rollouts[id]?.phase, before != phase else { return [] }
            switch phase {
            case .paused: return [(id, RolloutEvent(.paused, reason: reason))]
            case .running: return [(id, RolloutEvent(.resumed, reason: reason))]
            case .aborted: return [(id, RolloutEvent(.aborted, reason: reason))]
            case .completed: return [(id, RolloutEvent(.completed))]
            }
        case .noted, .agentSeen, .hostEnrolled, .hostForgotten, .rolloutDropped:
            return []
        }
    }
}
