import Wire

/// Where one host is in one rollout. Moves forward only: pending → admitted → downloading →
/// installing → restarting → confirming → done, or to failed (and, after a backoff, pending again
/// while attempts remain). A pending host that stops beating is `absent`: it holds nothing up,
/// and is pending again when it comes back.
public enum HostPhase: String, Codable, Sendable, CaseIterable {
    case pending, admitted, downloading, installing, restarting, confirming, done, failed, absent

    /// Holding a concurrency slot.
    public var isActive: Bool { [.admitted, .downloading, .installing, .restarting, .confirming].contains(self) }

    var rank: Int { Self.allCases.firstIndex(of: self)! }

    /// The phase an agent state reports, for a host upgrading in this rollout.
    init?(_ state: AgentState) {
        switch state {
        case .downloading: self = .downloading
        case .installing: self = .installing
        case .restarting: self = .restarting
        case .confirming: self = .confirming
        case .idle, .failed: return nil
        }
    }
}

/// One host's record in one rollout.
public struct HostProgress: Codable, Sendable, Equatable {
    public var phase: HostPhase
    public var batch: Int
    /// The version it ran when it joined the rollout (what a rollback returns to).
    public var fromVersion: String
    /// Times admitted.
    public var attempts: Int = 0
    /// Times failed.
    public var failures: Int = 0
    public var admittedAt: Int64?
    public var leaseUntil: Int64?
    public var deadline: Int64?
    /// Why it failed last, when it did.
    public var reason: String?
    public var retryAt: Int64?
    public var progressBytes: Int64 = 0
    /// Bytes fetched by source URL, as the host last reported.
    public var bytesBySource: [String: Int64] = [:]
    /// The sources it was ordered to use, best first.
    public var sources: [String] = []
}

public enum RolloutPhase: String, Codable, Sendable {
    case running, paused, aborted, completed

    public var isActive: Bool { self == .running || self == .paused }
}

/// A rollout and every host's progress in it.
public struct Rollout: Codable, Sendable, Equatable {
    public var id: String
    public var spec: RolloutSpec
    public var phase: RolloutPhase
    public var pauseReason: String?
    public var createdAt: Int64
    public var finishedAt: Int64?
    /// Set for rollbacks: hosts newer than the target are targets too.
    public var allowsDowngrade: Bool
    public var hosts: [String: HostProgress]

    /// Hosts that failed and have not succeeded since: what the failure budget counts.
    public var failedHosts: Int { hosts.values.filter { $0.failures > 0 && $0.phase != .done }.count }

    public var activeCount: Int { hosts.values.filter(\.phase.isActive).count }

    /// The lowest batch with hosts still to start or still upgrading; failed and absent hosts
    /// never hold a batch open. Nil when every host is done, failed or absent.
    public var currentBatch: Int? {
        hosts.values.filter { $0.phase == .pending || $0.phase.isActive }.map(\.batch).min()
    }

    /// The batch hosts joining now are put in: the last one.
    var lastBatch: Int { hosts.values.map(\.batch).max() ?? 0 }

    /// Whether a host running `version` is one this rollout should upgrade.
    func isTarget(version: String) -> Bool {
        guard let target = SemanticVersion(spec.version), let current = SemanticVersion(version) else {
            return version != spec.version
        }
        return allowsDowngrade ? current != target : current < target
    }
}

/// What HBS knows of an agent from its last beat.
public struct AgentRecord: Codable, Sendable, Equatable {
    public var hostname: String
    public var ip: String
    public var version: String
    public var labels: [String: String]
    public var state: AgentState
    public var lastSeen: Int64
    public var held: [HeldRelease]
    public var peerPort: Int?
    public var error: String?

    init(_ beat: HeartbeatRequest, now: Int64) {
        hostname = beat.hostname
        ip = beat.ip
        version = beat.version
        labels = beat.labels
        state = beat.state
        lastSeen = now
        held = beat.held
        peerPort = beat.peerPort
        error = beat.error
    }

    /// The peer base URL, when it serves.
    var peerURL: String? { peerPort.map { "http://\(ip.contains(":") ? "[\(ip)]" : ip):\($0)" } }
}
