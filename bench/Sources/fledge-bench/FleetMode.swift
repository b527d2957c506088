import LocalFleet

/// One way of getting a release to every host, as `fledge-bench fleet` runs it: each on a
/// fresh fleet of the same shape and caps, one batch, no canary.
enum FleetMode: String, CaseIterable, Sendable {
    /// falcon's way: every host from the one origin at once; no peers, no capacity planning.
    case origin
    /// Several origins, each with the single origin's cap, shared out by their announced
    /// capacity; no peers.
    case cdnBatches = "cdn-batches"
    /// One origin; peers serve only whole verified releases.
    case peerFile = "peer-file"
    /// One origin; peers relay verified pieces as they arrive.
    case peerPiece = "peer-piece"

    var peers: Bool { self == .peerFile || self == .peerPiece }

    /// Origins this mode runs: `cdnOrigins` for cdn-batches, one otherwise.
    func origins(cdnOrigins: Int) -> Int { self == .cdnBatches ? cdnOrigins : 1 }

    /// The fleet and rollout of this mode for the shared shape and caps.
    func plans(_ shape: FleetShape) -> (FleetPlan, RolloutPlan) {
        var plan = FleetPlan()
        plan.network = shape.network
        plan.agents = shape.agents
        plan.origins = origins(cdnOrigins: shape.cdnOrigins)
        plan.originBytesPerSecond = shape.originBytesPerSecond
        plan.agentDownloadBytesPerSecond = shape.agentBytesPerSecond
        plan.agentUploadBytesPerSecond = shape.agentBytesPerSecond
        plan.fastBeatSeconds = shape.fastBeatSeconds
        plan.pieceRelay = self == .peerPiece
        plan.cdnSeeds = shape.cdnSeeds
        plan.swarmPeers = shape.swarmPeers
        plan.fallbackPatienceSeconds = shape.fallbackPatienceSeconds
        plan.piecesPerSource = shape.piecesPerSource
        plan.peerUploadSlots = shape.peerUploadSlots
        plan.peerUploadQueue = shape.peerUploadQueue
        plan.piecesInFlight = shape.piecesInFlight
        // Whole-file relay: a peer serves uplink / downlink downloads at once (the planner's
        // rule), so each gets a host's full downlink; the swarm has its own limits.
        plan.peerFanout = 1
        plan.releaseSize = shape.releaseBytes
        plan.pieceSize = shape.pieceBytes
        var rollout = RolloutPlan()
        rollout.peers = peers
        rollout.maxConcurrent = shape.agents
        // falcon plans nothing: every host downloads at once, however many the origin can feed.
        if self == .origin { rollout.originCapacityMbps = 100_000 }
        return (plan, rollout)
    }
}

/// What every mode of one run shares: fleet size, release, caps and who holds them,
/// control-plane tuning.
struct FleetShape: Sendable {
    /// Loopback with Fledge's rate limits, or a namespace per host with kernel tbf.
    var network: FleetNetwork = .loopback
    var agents: Int
    var releaseBytes: Int64
    var pieceBytes: Int64
    /// Each agent's download and upload cap, bytes/s.
    var agentBytesPerSecond: Int64
    /// Each origin's upload cap, bytes/s.
    var originBytesPerSecond: Int64
    var cdnOrigins: Int
    var fastBeatSeconds: Double
    /// Swarm tuning (peer-piece), nil for the defaults.
    var cdnSeeds: Int? = nil
    var swarmPeers: Int? = nil
    var fallbackPatienceSeconds: Double? = nil
    var piecesPerSource: Int? = nil
    var peerUploadSlots: Int? = nil
    var peerUploadQueue: Int? = nil
    var piecesInFlight: Int? = nil
}

/// Kumar and Ross's lower bound on the time to give N hosts a file of F bytes, and the
/// origin-only (falcon) time, for one mode's caps.
struct TransferModel: Sendable {
    /// F: the release's bytes.
    var fileBytes: Double
    var hosts: Double
    /// u_s: all origins' upload together.
    var sourceUpload: Double
    /// d_min: a host's download.
    var hostDownload: Double
    /// u_i: each host's upload to peers (0 when peers are off).
    var hostUpload: Double

    /// `max(F/u_s, F/d_min, N*F/(u_s + sum u_i))`.
    var minimumSeconds: Double {
        max(fileBytes / sourceUpload, fileBytes / hostDownload, hosts * fileBytes / (sourceUpload + hosts * hostUpload))
    }

    /// `max(N*F/u_s, F/d_min)`: every byte from the origins.
    var originOnlySeconds: Double { max(hosts * fileBytes / sourceUpload, fileBytes / hostDownload) }

    init(mode: FleetMode, shape: FleetShape, fileBytes: Int64) {
        self.fileBytes = Double(fileBytes)
        hosts = Double(shape.agents)
        sourceUpload = Double(shape.originBytesPerSecond) * Double(mode.origins(cdnOrigins: shape.cdnOrigins))
        hostDownload = Double(shape.agentBytesPerSecond)
        hostUpload = mode.peers ? Double(shape.agentBytesPerSecond) : 0
    }
}
