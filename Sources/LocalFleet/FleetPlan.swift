/// The shape of a local fleet: how many agents and origins, their rate caps and who holds
/// them (`network`), how the control plane is tuned, and the release the fleet upgrades to. On
/// loopback Fledge's own rate limiters hold every cap: the seeder's `--rate`, the agent's
/// `peerUploadBytesPerSecond` and `downloadBytesPerSecond`; with namespaces the kernel does
/// (`tc tbf` on each host's link) and those limiters are off.
public struct FleetPlan: Sendable {
    /// Who shapes the links: Fledge's rate limiters on 127.0.0.1, or the kernel.
    public var network: FleetNetwork = .loopback
    /// Agents, each a `fledge-agent` under `scripts/supervise` with a data directory of its own.
    public var agents: Int = 16
    /// `fledge-seeder serve` origins, each serving the same tree.
    public var origins: Int = 1
    /// Upload cap of each origin, bytes per second; nil: none.
    public var originBytesPerSecond: Int64?
    /// Each agent's download cap, bytes per second; nil: none.
    public var agentDownloadBytesPerSecond: Int64?
    /// Each agent's peer upload cap, bytes per second; nil: none.
    public var agentUploadBytesPerSecond: Int64?
    /// The agents' longest pause between beats (an idle agent long-polls this long).
    public var heartbeatSeconds: Double = 60
    /// Each agent's commit window (`commitSeconds`): 0 commits at the first answered beat, so
    /// a fleet run measures distribution and restart, not a wait chosen by the operator.
    public var commitSeconds: Double = 0
    /// HBS's beat interval while a rollout has work: its control-plane delay.
    public var fastBeatSeconds: Double = 0.5
    /// HBS planner: peers qualify with verified pieces, not only whole releases.
    public var pieceRelay: Bool = false
    /// Peers serving one download each at once, if not the planner's default.
    public var peerFanout: Int?
    /// Swarm tuning, where not the defaults: HBS planner's `cdnSeeds` and `swarmPeers`, the
    /// agents' `fallbackPatienceSeconds` and `piecesPerSource`.
    public var cdnSeeds: Int?
    public var swarmPeers: Int?
    public var fallbackPatienceSeconds: Double?
    public var piecesPerSource: Int?
    /// The agents' `peerUploadSlots`, `peerUploadQueue` and `piecesInFlight`, where not the
    /// defaults.
    public var peerUploadSlots: Int?
    public var peerUploadQueue: Int?
    public var piecesInFlight: Int?
    /// Racks the agents are spread over (labels `idc` a/b, `rack` r1...), so locality has
    /// something to prefer.
    public var racks: Int = 4
    /// The version every agent starts on, and the one published and rolled out.
    public var fromVersion = "1.0.0"
    public var toVersion = "1.1.0"
    /// Size of the target release; nil: the stamped agent as built. Larger: the binary is
    /// padded with random bytes to this size less the unit file (an ELF ignores what follows
    /// it), so the release is one big file.
    public var releaseSize: Int64?
    /// Piece size of the target release; nil: the publisher's default (about 128 pieces).
    public var pieceSize: Int64?

    public init() {}

    /// Mbit/s of a rate in bytes per second, as HBS's planner counts capacities.
    public static func megabits(_ bytesPerSecond: Int64) -> Double { Double(bytesPerSecond) * 8 / 1e6 }

    func validate() throws(LocalFleetError) {
        guard agents > 0 else { throw .invalidPlan("agents must be at least 1") }
        guard origins > 0 else { throw .invalidPlan("origins must be at least 1") }
        for (name, cap) in [("origin", originBytesPerSecond), ("agent download", agentDownloadBytesPerSecond),
                            ("agent upload", agentUploadBytesPerSecond)] {
            if let cap, cap <= 0 { throw .invalidPlan("the \(name) cap must be positive") }
        }
        guard heartbeatSeconds >= 1 else { throw .invalidPlan("heartbeatSeconds must be at least 1 (the agent's minimum)") }
        guard fastBeatSeconds > 0 else { throw .invalidPlan("fastBeatSeconds must be positive") }
        guard racks > 0 else { throw .invalidPlan("racks must be at least 1") }
        if let pieceSize, pieceSize <= 0 { throw .invalidPlan("pieceSize must be positive") }
        if network == .namespaces {
            guard agents <= KernelLinks.maximumAgents, origins <= KernelLinks.maximumOrigins else {
                throw .invalidPlan("a namespaced fleet has at most \(KernelLinks.maximumAgents) agents and \(KernelLinks.maximumOrigins) origins")
            }
        }
    }
}
