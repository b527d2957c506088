import Rollouts
import Swarm
import Wire

/// Everything one simulated rollout depends on. Rates in bytes per second, times in seconds.
public struct SimulationParameters: Sendable {
    public var hosts = 1000
    public var idcs = 4
    public var racksPerIDC = 8
    /// F: bytes of the release.
    public var releaseBytes: Int64 = 200_000_000
    public var pieceBytes: Int64 = 2 << 20
    public var hostUpload = 125e6
    public var hostDownload = 125e6
    /// CDNs of the cdn-batches mode, each with `cdnUpload`; the origin mode uses the first.
    public var cdns = 2
    /// CDNs of the peer modes; nil: `cdns`.
    public var peerCDNs: Int?
    public var cdnUpload = 1.25e9
    /// From a verified release to the new version's first beat: stage, self-test, switch, restart.
    public var installSeconds = 1.0
    /// Share of hosts whose upgrade fails on every attempt (their self-test fails).
    public var failureRate = 0.0
    public var fastBeatSeconds = 1.0
    public var seed: UInt64 = 1
    /// Rates are recomputed at most this often while transfers run (events between two
    /// reallocations take effect at the next one).
    public var stepSeconds = 0.005
    public var canary = 0
    /// Batches after the canary, in percent of the rest; empty: one batch.
    public var batchPercentages: [Double] = []
    /// The rollout's concurrency limit; nil: every host.
    public var maxConcurrent: Int?
    /// Failed hosts tolerated before the rollout pauses; nil: every host.
    public var failureBudget: Int?
    /// The agents' swarm policy (the agent's own defaults unless changed).
    public var swarm = SwarmPolicy.default
    /// The download cap that paces piece starts, bytes per second, as the fleet bench runs
    /// agents; nil: none (the NIC limits).
    public var pacedDownload: Double?
    /// From a peer verifying a piece (or a host adding a source) to the host hearing of it:
    /// the availability stream's event, one way.
    public var availabilityLatency = 0.001
    /// The planner's settings (HBS's defaults unless changed); the mode sets `pieceRelay`, and
    /// `hostDownlinkMbps` comes from `hostDownload`.
    public var planner = PlannerConfiguration()
    /// A run stops at this virtual time, finished or not.
    public var timeLimitSeconds = 1_000_000.0
    /// Skip engine calls for beats whose answer cannot differ from the host's last one (see
    /// `BeatElision`); every skipped host still beats for real at least every `refreshSeconds`.
    public var elideBeats = true
    public var refreshSeconds = 120.0
    /// The engine sweeps this often (HBS: every second), and whenever a retry or a deadline
    /// is due (the only sweeps that can change anything while no agent falls silent).
    public var sweepSeconds = 1.0
    /// How fast HBS answers the waiting hosts at the rollout's start; nil: at once.
    public var hbs: HBSService?
    /// Virtual seconds between two samples handed to a run's trace.
    public var traceSeconds = 1.0

    public init() {}

    public var pieceCount: Int { Int((releaseBytes + pieceBytes - 1) / pieceBytes) }

    /// CDNs `mode` uses.
    public func cdnCount(_ mode: SimulationMode) -> Int {
        switch mode {
        case .origin: 1
        case .cdnBatches: cdns
        case .peerFile, .peerPiece: peerCDNs ?? cdns
        }
    }

    /// CDNs any mode uses.
    var cdnNodes: Int { max(cdns, peerCDNs ?? cdns, 1) }

    public func pieceSize(_ piece: Int) -> Int64 {
        min(pieceBytes, releaseBytes - Int64(piece) * pieceBytes)
    }

    static func mbps(_ bytesPerSecond: Double) -> Double { bytesPerSecond * 8 / 1e6 }

    /// The engine's settings for `mode`.
    func engineConfiguration(_ mode: SimulationMode) -> EngineConfiguration {
        var configuration = EngineConfiguration()
        configuration.fastBeatSeconds = fastBeatSeconds
        configuration.planner = planner
        configuration.planner.pieceRelay = mode.pieceRelay
        configuration.planner.hostDownlinkMbps = Self.mbps(hostDownload)
        return configuration
    }

    /// The rollout an operator would start for `mode`: one batch (or the canary and batches
    /// given), every host at once unless `maxConcurrent`, no pause on failures unless
    /// `failureBudget`. In origin mode the CDN announces room for every host (falcon plans
    /// nothing). The deadline leaves room for the slowest mode (twice origin-only).
    func spec(_ mode: SimulationMode, topology: FleetTopology) -> RolloutSpec {
        let announced = mode == .origin ? max(Self.mbps(cdnUpload), Double(hosts) * Self.mbps(hostDownload)) : Self.mbps(cdnUpload)
        return RolloutSpec(
            name: SimulatedRelease.name, version: SimulatedRelease.newVersion, locator: .fledge(manifestURL: nil),
            sources: topology.cdnURLs.prefix(cdnCount(mode)).map { CDNSource(url: $0, capacityMbps: announced) },
            canary: canary, batches: batchPercentages.isEmpty ? .sizes([]) : .percentages(batchPercentages),
            maxConcurrent: maxConcurrent ?? hosts, failureBudget: failureBudget ?? hosts, peersMayServe: mode.peersServe,
            deadlineSeconds: deadlineSeconds)
    }

    /// Seconds from admission to confirmation: the engine's 900, or twice the origin-only
    /// time and ten minutes when that is longer.
    var deadlineSeconds: Int64 { max(900, Int64(2 * originOnlyTime) + 600) }

    /// Kumar and Ross's bound for `mode`'s caps: its CDNs, and the hosts' uploads when peers serve.
    public func minimumTime(_ mode: SimulationMode) -> Double {
        KumarRoss.minimumTime(
            hosts: hosts, bytes: Double(releaseBytes), sourceUpload: Double(cdnCount(mode)) * cdnUpload,
            hostDownload: hostDownload, hostUploads: mode.peersServe ? Double(hosts) * hostUpload : 0)
    }

    /// Every host from one origin (one CDN), no peers.
    public var originOnlyTime: Double {
        KumarRoss.originOnlyTime(hosts: hosts, bytes: Double(releaseBytes), sourceUpload: cdnUpload, hostDownload: hostDownload)
    }
}

/// The release the simulated fleet upgrades to.
enum SimulatedRelease {
    static let name = "fledge-agent"
    static let oldVersion = "1.0.0"
    static let newVersion = "2.0.0"
}
