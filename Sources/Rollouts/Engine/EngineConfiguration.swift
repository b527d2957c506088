/// Timings and limits of the rollout engine.
public struct EngineConfiguration: Codable, Sendable, Equatable {
    /// Beat interval while a rollout has work or the host upgrades.
    public var fastBeatSeconds: Double = 1
    /// Beat interval of an idle fleet.
    public var slowBeatSeconds: Double = 60
    /// Admissions per host per rollout before it stays failed.
    public var maxAttempts = 3
    /// First retry after this many seconds, doubling per failure.
    public var retryBackoffSeconds: Int64 = 10
    /// A host not seen for this long is not made a target, and a pending one is set absent.
    public var absentAfterSeconds: Int64 = 180
    /// Unseen for this long, a host is forgotten (record and credential: it enrols again if it
    /// comes back); nil keeps every host.
    public var pruneAfterSeconds: Int64? = 30 * 24 * 3600
    /// Finished rollouts kept; older ones are dropped (the active one always stays).
    public var rolloutHistory = 50
    public var planner = PlannerConfiguration()

    public init() {}

    /// Keys a config file leaves out keep their defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        fastBeatSeconds = try container.decodeIfPresent(Double.self, forKey: .fastBeatSeconds) ?? fastBeatSeconds
        slowBeatSeconds = try container.decodeIfPresent(Double.self, forKey: .slowBeatSeconds) ?? slowBeatSeconds
        maxAttempts = try container.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? maxAttempts
        retryBackoffSeconds = try container.decodeIfPresent(Int64.self, forKey: .retryBackoffSeconds) ?? retryBackoffSeconds
        absentAfterSeconds = try container.decodeIfPresent(Int64.self, forKey: .absentAfterSeconds) ?? absentAfterSeconds
        pruneAfterSeconds = try container.decodeIfPresent(Int64.self, forKey: .pruneAfterSeconds) ?? pruneAfterSeconds
        rolloutHistory = try container.decodeIfPresent(Int.self, forKey: .rolloutHistory) ?? rolloutHistory
        planner = try container.decodeIfPresent(PlannerConfiguration.self, forKey: .planner) ?? planner
    }
}
