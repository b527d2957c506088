import ArgumentParser
import Foundation
import LocalFleet
import ProcessHarness
import Rollouts
import Swarm

/// `fledge-bench fleet`: a whole fleet upgrade as real processes on loopback, once per mode
/// (origin only, several CDNs, peers serving whole files, peers relaying pieces), each on a
/// fresh fleet of the same shape and caps, against Kumar and Ross's T_min for those caps.
struct FleetBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Time to upgrade N real agents (origin only, CDNs, peer files, peer pieces) vs Kumar-Ross T_min.",
        discussion: """
            Each mode gets a fresh fleet (LocalFleet): fledge-hbs on its embedded store, \
            fledge-seeder serve origin(s) under --origin-mbps each, and --agents fledge-agents \
            under scripts/supervise on 1.0.0, each capped at --agent-mbps down \
            (downloadBytesPerSecond) and up (peerUploadBytesPerSecond): Fledge's own rate limits \
            on 127.0.0.1. With --netns the kernel shapes the links instead: each origin and \
            agent in a network namespace of its own on a bridge, tc tbf on each veth (agent up \
            and down, origin up), Fledge's rate limits off (needs root). Release 1.1.0 is the \
            stamped agent padded to --size-mib, in pieces of \
            --piece-kib. One rollout, one batch, no canary, maxConcurrent N. Reported per mode: \
            seconds from the POST until 50/90/100 % of the hosts confirmed 1.1.0; origin egress \
            / F (the origins' own request logs); T_min = max(F/u_s, F/d, N*F/(u_s + N*u)) with \
            u = 0 when peers are off, and t100 / T_min; the origin-only time max(N*F/u_s, F/d). \
            The table, a JSON file and an SVG plot go to --results; the last line of standard \
            output is one JSON object.
            """)

    @Option(help: "Agents in each fleet.") var agents = 32
    @Option(name: .customLong("size-mib"), help: "Size of the release (the agent binary, padded), MiB.") var sizeMiB = 32
    @Option(name: .customLong("piece-kib"), help: "Piece size, KiB.") var pieceKiB = 512
    @Option(name: .customLong("agent-mbps"), help: "Each agent's download and upload cap, Mbit/s (10^6 bits).") var agentMbps = 8.0
    @Option(name: .customLong("origin-mbps"), help: "Each origin's upload cap, Mbit/s (default: 8 x --agent-mbps).") var originMbps: Double?
    @Option(name: .customLong("cdn-origins"), help: "Origins of the cdn-batches mode, each with the --origin-mbps cap.") var cdnOrigins = 4
    @Option(help: "Modes to run, in order (comma-separated): origin, cdn-batches, peer-file, peer-piece.")
    var modes = FleetMode.allCases.map(\.rawValue).joined(separator: ",")
    @Option(name: .customLong("fast-beat"), help: "HBS's beat interval while a rollout has work, seconds.") var fastBeat = 0.5
    @Option(name: .customLong("cdn-seeds"), help: "Swarm: hosts per CDN fetching from it first (HBS default: its capacity over an agent's downlink).") var cdnSeeds: Int?
    @Option(name: .customLong("swarm-peers"), help: "Swarm: peers per order (HBS default \(PlannerConfiguration().swarmPeers)).") var swarmPeers: Int?
    @Option(name: .customLong("fallback-seconds"), help: "Swarm: seconds without a verified piece before an agent asks the CDN (agent default \(SwarmPolicy.default.fallbackPatience)).")
    var fallbackSeconds: Double?
    @Option(name: .customLong("pieces-per-source"), help: "Pieces an agent asks of one source at once (agent default \(SwarmPolicy.default.maxPerSource)).")
    var piecesPerSource: Int?
    @Option(name: .customLong("upload-queue"), help: "Requests an agent queues per upload slot (agent default \(SwarmPolicy.default.uploadQueue)).")
    var uploadQueue: Int?
    @Option(name: .customLong("in-flight"), help: "Pieces an agent has in flight at once (agent default \(SwarmPolicy.default.maxInFlight)).")
    var inFlight: Int?
    @Option(name: .customLong("upload-slots"), help: "Pieces an agent sends to peers at once (agent default \(SwarmPolicy.default.uploadSlots)).")
    var uploadSlots: Int?
    @Flag(name: .customLong("netns"), help: "Shape links in the kernel: a network namespace per agent and origin on a bridge, tc tbf on each link, Fledge's rate limits off (root).")
    var netns = false
    @Option(help: "Directory to create each fleet's temporary directory in (default: /tmp). Removed after each mode.")
    var workdir: String?
    @Option(help: "Where the .txt, .json and .svg results go (default: this repository's bench/results).")
    var results: String?

    func validate() throws {
        if agents <= 0 { throw ValidationError("--agents must be positive") }
        if sizeMiB <= 0 || pieceKiB <= 0 { throw ValidationError("--size-mib and --piece-kib must be positive") }
        if agentMbps <= 0 || (originMbps ?? 1) <= 0 { throw ValidationError("caps must be positive") }
        if cdnOrigins <= 0 { throw ValidationError("--cdn-origins must be positive") }
        if fastBeat <= 0 { throw ValidationError("--fast-beat must be positive") }
        _ = try parsedModes()
    }

    func parsedModes() throws -> [FleetMode] {
        try modes.split(separator: ",").map { name in
            guard let mode = FleetMode(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown mode '\(name)': use \(FleetMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return mode
        }
    }

    var shape: FleetShape {
        FleetShape(
            network: netns ? .namespaces : .loopback, agents: agents, releaseBytes: Int64(sizeMiB) << 20, pieceBytes: Int64(pieceKiB) << 10,
            agentBytesPerSecond: Int64(agentMbps * 1e6 / 8), originBytesPerSecond: Int64((originMbps ?? 8 * agentMbps) * 1e6 / 8),
            cdnOrigins: cdnOrigins, fastBeatSeconds: fastBeat, cdnSeeds: cdnSeeds, swarmPeers: swarmPeers,
            fallbackPatienceSeconds: fallbackSeconds, piecesPerSource: piecesPerSource, peerUploadSlots: uploadSlots,
            peerUploadQueue: uploadQueue, piecesInFlight: inFlight)
    }

    func run() async throws {
        try await Bench.run {
            try ReleaseProducts.use(LocalFleet.products)
            let shape = self.shape
            if shape.network == .namespaces, let reason = KernelLinks.unavailableReason() {
                throw BenchError.tool("--netns: \(reason)")
            }
            if shape.releaseBytes / shape.pieceBytes < 64 {
                Bench.progress("warning: \(shape.releaseBytes / shape.pieceBytes) pieces; T_min is approached with at least 64 (see ARCHITECTURE.md)")
            }
            var measured: [FleetModeResult] = []
            for mode in try parsedModes() {
                Bench.progress("mode \(mode.rawValue): a fresh fleet of \(agents) agents")
                measured.append(try await Cleanup.shared.withTemporaryDirectory(in: workdir, label: "fledge-bench-fleet-\(mode.rawValue)") {
                    try await Self.measure(mode, shape: shape, in: $0.string)
                })
            }
            // A signal's teardown may have failed the last mode: no report of a run cut short.
            if Cleanup.shared.isStopping { throw BenchError.check("interrupted") }
            try FleetReport(shape: shape, results: measured, command: CommandLine.arguments).write(to: results ?? Self.defaultResults)
        }
    }

    /// This repository's bench/results.
    static var defaultResults: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("results").path
    }

    /// One mode on a fresh fleet in `directory`: start, publish, roll out, read, stop.
    static func measure(_ mode: FleetMode, shape: FleetShape, in directory: String) async throws -> FleetModeResult {
        let (plan, rollout) = mode.plans(shape)
        let fleet = try await LocalFleet.start(plan, in: directory) { Bench.progress("  \($0)") }
        do {
            let release = try await fleet.publishTarget()
            let model = TransferModel(mode: mode, shape: shape, fileBytes: release.totalSize)
            Bench.progress("  \(mode.rawValue): F = \(release.totalSize) bytes in \(release.pieces) pieces; T_min \(Format.fixed(model.minimumSeconds)) s, origin-only \(Format.fixed(model.originOnlySeconds)) s; rolling out")
            let mark = FleetCPU.mark(fleet)
            let linksMark = fleet.links?.counters()
            let (id, postedAt) = try await fleet.startRollout(rollout)
            var timeline = RolloutTimeline()
            var failure: String?
            var lastPrinted = 0.0
            do {
                _ = try await fleet.watch(id, postedAt: postedAt, every: .milliseconds(200),
                                          timeout: .seconds(Int(max(180, 3 * model.originOnlySeconds + 60)))) { sample in
                    timeline.add(sample)
                    if sample.seconds - lastPrinted >= 5 {
                        lastPrinted = sample.seconds
                        Bench.progress("  \(Format.fixed(sample.seconds)) s: \(sample.progress.done)/\(sample.progress.hosts) confirmed, origins served \(Format.fixed(Double(sample.originBytes) / 1e6)) MB, peers \(Format.fixed(Double(sample.peerBytes) / 1e6)) MB")
                    }
                }
            } catch let error as LocalFleetError {
                // A signal is tearing the fleet down under the rollout: nothing to report.
                if Cleanup.shared.isStopping { throw error }
                failure = error.description
                Bench.progress("  \(mode.rawValue) did not complete: \(error)")
            }
            let cpu = FleetCPU.since(mark, fleet)
            let links = linksMark.flatMap { start in fleet.links.map { $0.counters() - start } }
            let last = (try? await fleet.sample(id, postedAt: postedAt)) ?? timeline.last
            await fleet.stop()
            let result = FleetModeResult(
                mode: mode, fileBytes: release.totalSize, pieces: release.pieces, model: model,
                t50: timeline.seconds(toFraction: 0.5), t90: timeline.seconds(toFraction: 0.9), t100: failure == nil ? timeline.seconds(toFraction: 1) : nil,
                originBytes: last?.originBytes ?? 0, peerBytes: last?.peerBytes ?? 0,
                reportedCDNBytes: last?.progress.bytesBySourceKind["cdn"] ?? 0, reportedPeerBytes: last?.progress.bytesBySourceKind["peer"] ?? 0,
                cpu: cpu, links: links, curve: timeline.confirmedCurve, failure: failure)
            Bench.progress("  \(mode.rawValue): t100 \(result.t100.map { Format.fixed($0) } ?? "-") s, \(Format.fixed(result.ratioToMinimum ?? .nan, 2)) x T_min, origin egress \(Format.fixed(result.originEgressOverF, 2)) x F")
            return result
        } catch {
            await fleet.stop()
            throw error
        }
    }
}
