/// Timings and limits of the rollout engine.
public struct EngineConfiguration: Codable, Sendable, Equatable {
    /// Beat interval while a rollout has work or the host upgrades.
    public var fastBeatSeconds: Double = 1
    /// Beat interval of an idle fleet, and of hosts with nothing to wait for in a rollout
    /// (they long-poll: a rollout starting or resuming wakes them).
    public var slowBeatSeconds: Double = 60
    /// Beats per second that hosts waiting for a slot may cost HBS, all instances together:
    /// their interval stretches from `fastBeatSeconds` (up to `slowBeatSeconds`) so that their
    /// beats stay within it. With 100,000 hosts waiting, beating every second would ask 100,000
    /// beats a second of instances that answer some 20,000 each on two cores
    /// (bench/results/hbs-N100000-*); at 10,000 a second (half of one such instance) they beat
    /// every 10 s, and a freed slot is still taken within moments, since some waiting host beats
    /// every 1/10,000 s. Up to 10,000 hosts nothing changes. Raise it with more instances.
    public var waitingBeatsPerSecond: Double = 10_000
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
        waitingBeatsPerSecond = try container.decodeIfPresent(Double.self, forKey: .waitingBeatsPerSecond) ?? waitingBeatsPerSecond
        maxAttempts = try container.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? maxAttempts
        retryBackoffSeconds = try container.decodeIfPresent(Int64.self, forKey: .retryBackoffSeconds) ?? retryBackoffSeconds
        absentAfterSeconds = try container.decodeIfPresent(Int64.self, forKey: .absentAfterSeconds) ?? absentAfterSeconds
        pruneAfterSeconds = try container.decodeIfPresent(Int64.self, forKey: .pruneAfterSeconds) ?? pruneAfterSeconds
        rolloutHistory = try container.decodeIfPresent(Int.self, forKey: .rolloutHistory) ?? rolloutHistory
        planner = try container.decodeIfPresent(PlannerConfiguration.self, forKey: .planner) ?? planner
    }
}

extension EngineConfiguration {
    /// The beat interval of each of `waitingHosts` hosts waiting for a slot, so that together
    /// they beat `waitingBeatsPerSecond` times a second at most: never faster than
    /// `fastBeatSeconds`, never slower than `slowBeatSeconds`.
    public func pacedBeatSeconds(waitingHosts: Int) -> Double {
        let paced = Double(waitingHosts) / max(1, waitingBeatsPerSecond)
        return min(slowBeatSeconds, max(fastBeatSeconds, paced))
    }
}
