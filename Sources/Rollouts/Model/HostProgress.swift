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
    /// Origins it may use only as a last resort (a swarm's CDN, for hosts that are no seed).
    public var fallbacks: [String]?
    /// A CDN seed's share of the pieces (its order says so again when re-sent).
    public var seedShare: SeedShare?
    /// Sources it reported dropping for misbehaving (lying, corrupt, too slow): never listed
    /// for it again, and for no host once enough hosts report one.
    public var reported: [String]?

    /// Pending as its rollout created it, never admitted: stored as a name in a list, not as
    /// a record (`Rollout`'s untouched hosts).
    public var isAsCreated: Bool { self == HostProgress(phase: .pending, batch: batch, fromVersion: fromVersion) }

    /// Still fetching: what the planner's limits count.
    var isFetching: Bool { phase == .admitted || phase == .downloading }
}
