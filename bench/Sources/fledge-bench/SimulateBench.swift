import ArgumentParser
import FleetSimulation
import Foundation
import Rollouts
import Seeder
import Swarm

/// `fledge-bench simulate`: a fleet of virtual agents and a flow-level network in virtual
/// time, driving the real rollout engine, in every distribution mode; times against
/// Kumar-Ross's bound and against origin-only.
struct SimulateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate a rollout to 1k-100k hosts through the real rollout engine and source planner, in every distribution mode.",
        discussion: """
            Virtual agents beat to the real RolloutEngine (and, through it, the real SourcePlanner) \
            in virtual time, download pieces of the release over a flow-level network (every host \
            an uplink and a downlink, every CDN an uplink, max-min fair shares) and install it; \
            one run per mode: origin (one CDN, no peers), cdn-batches (every CDN), peer-file \
            (peers serve whole releases), peer-piece (peers relay verified pieces). Times are \
            virtual seconds from the rollout's creation: t50/t90/t100 of hosts confirmed, against \
            T_min = max(F/u_s, F/d, N*F/(u_s + sum u_i)) for the mode's caps, and the origin-only \
            time max(N*F/u_origin, F/d) (computed). A last run in peer-piece mode adds a canary \
            and batches. Writes a JSON file and an SVG plot (hosts done over time) to --output; \
            standard output ends with one JSON line.
            """)

    enum Preset: String, ExpressibleByArgument, CaseIterable {
        /// The goal: 100,000 hosts, 200 MB, two 10 Gbit/s CDNs, 1 Gbit/s hosts.
        case target
        /// `fledge-bench fleet`'s defaults: 32 agents at 8 Mbit/s (1 MB/s) up and down, their
        /// downloads paced by the agent's own cap (as the fleet bench sets it), 32 MiB in 512 KiB
        /// pieces, 64 Mbit/s (8 MB/s) origins, 4 of them for cdn-batches and 1 for the peer
        /// modes, 2 idcs x 4 racks, beats every 0.5 s.
        case fleetBench = "fleet-bench"
    }

    @Option(help: "Start from a preset (\(Preset.allCases.map(\.rawValue).joined(separator: ", "))); options given override it.")
    var preset: Preset?

    @Option(help: "Hosts in the fleet (default 1000).")
    var hosts: Int?

    @Option(help: "Data centres (label idc; default 4).")
    var idcs: Int?

    @Option(name: .customLong("racks-per-idc"), help: "Racks per data centre (label rack; default 16); hosts are spread round robin.")
    var racksPerIDC: Int?

    @Option(name: .customLong("size-mb"), help: "Release size F in MB (10^6 bytes; default 200).")
    var sizeMB: Double?

    @Option(name: .customLong("size-mib"), help: "Release size F in MiB (instead of --size-mb).")
    var sizeMiB: Double?

    @Option(name: .customLong("piece-kib"), help: "Piece size in KiB (default: what fledge-seeder publish picks for F).")
    var pieceKiB: Int?

    @Option(name: .customLong("host-mbps"), help: "Every host's uplink and downlink, Mbit/s (default 1000).")
    var hostMbps: Double?

    @Option(name: .customLong("host-up-mbps"), help: "Every host's uplink, Mbit/s (instead of --host-mbps).")
    var hostUpMbps: Double?

    @Option(name: .customLong("host-down-mbps"), help: "Every host's downlink, Mbit/s (instead of --host-mbps).")
    var hostDownMbps: Double?

    @Option(help: "CDNs of the cdn-batches mode (origin mode uses the first one only; default 2).")
    var cdns: Int?

    @Option(name: .customLong("peer-cdns"), help: "CDNs of the peer modes (default: --cdns).")
    var peerCDNs: Int?

    @Option(name: .customLong("cdn-mbps"), help: "Each CDN's uplink, Mbit/s (default 10000).")
    var cdnMbps: Double?

    @Option(name: .customLong("install-seconds"), help: "From the verified release to the new version's first beat (default 1).")
    var installSeconds: Double?

    @Option(name: .customLong("failure-rate"), help: "Share of hosts whose upgrade fails on every attempt (0-1).")
    var failureRate: Double = 0

    @Option(name: .customLong("fast-beat"), help: "Heartbeat interval while a rollout is active, seconds (default 1).")
    var fastBeat: Double?

    @Option(help: "Modes to run, comma-separated (\(SimulationMode.allCases.map(\.rawValue).joined(separator: ",")))")
    var modes: String = SimulationMode.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Canary hosts of the full rollout (the extra peer-piece run).")
    var canary: Int = 10

    @Option(help: "Batches after the canary in the full rollout, percent of the rest, comma-separated; the last repeats.")
    var batches: String = "10,30"

    @Flag(name: .customLong("no-full-rollout"), help: "Skip the full canary-and-batches run.")
    var noFullRollout = false

    @Option(name: .customLong("max-concurrent"), help: "The rollout's concurrency limit (default: every host).")
    var maxConcurrent: Int?

    @Option(name: .customLong("peer-fanout"), help: "Planner: downloads one peer serves at once (default: host uplink / downlink, at least 1).")
    var peerFanout: Int?

    @Option(name: .customLong("sources-per-order"), help: "Planner: sources per order.")
    var sourcesPerOrder: Int?

    @Option(name: .customLong("cdn-seeds"), help: "Planner, peer-piece: hosts per CDN that fetch from it first.")
    var cdnSeeds: Int?

    @Option(name: .customLong("swarm-peers"), help: "Planner, peer-piece: peers per order.")
    var swarmPeers: Int?

    @Option(name: .customLong("fallback-patience"), help: "Agents: seconds without a verified piece from their other sources before their fallbacks are asked (the agent's \(SwarmPolicy.default.fallbackPatience)).")
    var fallbackPatience: Double?

    @Option(name: .customLong("availability-latency-ms"), help: "Agents: from a peer verifying a piece to the hosts watching it hearing of it, ms (default 1).")
    var availabilityLatencyMs: Double?

    @Option(name: .customLong("max-per-source"), help: "Agents: pieces in flight from one source (the agent's \(SwarmPolicy.default.maxPerSource)).")
    var maxPerSource: Int?

    @Option(name: .customLong("max-in-flight"), help: "Agents: pieces in flight in all (the agent's \(SwarmPolicy.default.maxInFlight)).")
    var maxInFlight: Int?

    @Option(name: .customLong("upload-slots"), help: "Agents: pieces a peer sends at once; one more per slot waits, others are told when to come back (the agent's \(SwarmPolicy.default.uploadSlots)).")
    var uploadSlots: Int?

    @Option(name: .customLong("upload-queue"), help: "Agents: requests a busy peer queues per upload slot (the agent's \(SwarmPolicy.default.uploadQueue)).")
    var uploadQueue: Int?

    @Option(name: .customLong("hedge-factor"), help: "Agents: a piece in flight longer than this many typical piece times is asked of a second holder (the agent's \(SwarmPolicy.default.hedgeFactor)).")
    var hedgeFactor: Double?

    @Option(name: .customLong("announced-peers"), help: "Agents: peers that announce themselves taken in as sources, at most (the agent's \(SwarmPolicy.default.announcedPeers)).")
    var announcedPeers: Int?

    @Option(name: .customLong("seed-origin-holders"), help: "Agents: a CDN seed asks its CDN for a piece while at most this many of its peers hold it (the agent's \(SwarmPolicy.default.seedOriginHolders)).")
    var seedOriginHolders: Int?

    @Option(name: .customLong("near-peers"), help: "Planner, peer-piece: of the peers per order, how many are the nearest (the rest drawn at random).")
    var nearPeers: Int?

    @Flag(name: .customLong("paced-downloads"), inversion: .prefixedNo, help: "Agents pace piece starts at their downlink, as the agent's download cap does (default: with --preset fleet-bench only).")
    var pacedDownloads: Bool?

    @Option(name: .customLong("step-ms"), help: "Rates are recomputed at most this often, virtual ms (default: a 32nd of the time a host takes for 8 pieces at its full downlink, within 0.5-10 ms).")
    var stepMs: Double?

    @Option(name: .customLong("sweep-seconds"), help: "The engine sweeps this often (default 1; 60 with --preset target), and whenever a retry or deadline is due.")
    var sweepSeconds: Double?

    @Option(help: "Seed of every random choice (beat phases, tie-breaks, which hosts fail).")
    var seed: UInt64 = 1

    @Option(name: .customLong("hbs-instances"), help: "HBS instances answering the waiting hosts at the rollout's start, each at the rate measured on the real fledge-hbs (default 1).")
    var hbsInstances: Int = 1

    @Option(name: .customLong("hbs-answers-per-second"), help: "Hosts one HBS instance answers per second at a rollout's start (default: measured, \(Int(HBSService.measured.answersPerSecond))).")
    var hbsAnswersPerSecond: Double?

    @Option(name: .customLong("hbs-create-us-per-host"), help: "From a rollout's POST to it being durable, microseconds per host it targets (default: measured, \(Format.fixed(HBSService.measured.createSecondsPerHost * 1e6, 1))).")
    var hbsCreateMicroseconds: Double?

    @Flag(name: .customLong("instant-hbs"), help: "HBS answers every waiting host the instant the rollout is created (the control plane costs nothing).")
    var instantHBS = false

    @Option(name: .customLong("time-limit-hours"), help: "Stop a run at this virtual time, finished or not.")
    var timeLimitHours: Double = 48

    @Flag(name: .customLong("no-elide"), help: "Send every beat to the engine, even those whose answer cannot differ.")
    var noElide = false

    @Option(name: .customLong("trace-seconds"), help: "Print where each run stands every this many virtual seconds (stderr).")
    var traceSeconds: Double?

    @Option(help: "Directory for the JSON and SVG files.")
    var output: String = "bench/results"

    @Option(help: "File name stem (default simulate-N<hosts>-<date>).")
    var name: String?

    func validate() throws {
        if let hosts, hosts < 1 { throw ValidationError("--hosts must be positive") }
        if (idcs ?? 1) < 1 || (racksPerIDC ?? 1) < 1 { throw ValidationError("--idcs and --racks-per-idc must be positive") }
        if !(0...1).contains(failureRate) { throw ValidationError("--failure-rate must be in [0, 1]") }
        if let cdns, cdns < 1 { throw ValidationError("--cdns must be positive") }
        if let peerCDNs, peerCDNs < 1 { throw ValidationError("--peer-cdns must be positive") }
        if hbsInstances < 1 { throw ValidationError("--hbs-instances must be positive") }
        for value in [hbsAnswersPerSecond, hbsCreateMicroseconds].compactMap({ $0 }) where value <= 0 {
            throw ValidationError("--hbs-answers-per-second and --hbs-create-us-per-host must be positive")
        }
        for value in [sizeMB, sizeMiB, hostMbps, hostUpMbps, hostDownMbps, cdnMbps, stepMs, fastBeat, sweepSeconds].compactMap({ $0 }) where value <= 0 {
            throw ValidationError("sizes, rates and steps must be positive")
        }
        if let pieceKiB, pieceKiB <= 0 { throw ValidationError("--piece-kib must be positive") }
        for value in [maxPerSource, maxInFlight, uploadSlots, cdnSeeds, swarmPeers, peerFanout, sourcesPerOrder].compactMap({ $0 }) where value < 1 {
            throw ValidationError("in-flight limits and planner counts must be positive")
        }
        if let fallbackPatience, fallbackPatience < 0 { throw ValidationError("--fallback-patience must not be negative") }
        if let availabilityLatencyMs, availabilityLatencyMs < 0 { throw ValidationError("--availability-latency-ms must not be negative") }
        _ = try parsedModes()
        _ = try parsedBatches()
    }

    func parsedModes() throws -> [SimulationMode] {
        try modes.split(separator: ",").map { text in
            guard let mode = SimulationMode(rawValue: text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown mode '\(text)'")
            }
            return mode
        }
    }

    func parsedBatches() throws -> [Double] {
        try batches.split(separator: ",").map { text in
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)), value > 0, value <= 100 else {
                throw ValidationError("--batches takes percentages in (0, 100]")
            }
            return value
        }
    }

    /// The preset's values, then the options given.
    func parameters() -> SimulationParameters {
        var p = SimulationParameters()
        p.hosts = 1000
        p.idcs = 4
        p.racksPerIDC = 16
        p.releaseBytes = 200_000_000
        p.hostUpload = 125e6
        p.hostDownload = 125e6
        p.cdns = 2
        p.cdnUpload = 1.25e9
        p.installSeconds = 1
        var piece: Int64?
        switch preset {
        case .target:
            p.hosts = 100_000
            p.sweepSeconds = 60
        case .fleetBench:
            p.hosts = 32
            p.releaseBytes = 32 << 20
            piece = 512 << 10
            p.hostUpload = 1e6
            p.hostDownload = 1e6
            p.cdns = 4
            p.peerCDNs = 1
            p.cdnUpload = 8e6
            p.fastBeatSeconds = 0.5
            p.idcs = 2
            p.racksPerIDC = 4
            p.pacedDownload = 1e6
        case nil:
            break
        }
        if let hosts { p.hosts = hosts }
        if let idcs { p.idcs = idcs }
        if let racksPerIDC { p.racksPerIDC = racksPerIDC }
        if let sizeMB { p.releaseBytes = Int64(sizeMB * 1e6) }
        if let sizeMiB { p.releaseBytes = Int64(sizeMiB * 1_048_576) }
        if let pieceKiB { piece = Int64(pieceKiB) << 10 }
        p.pieceBytes = piece ?? Publisher.defaultPieceSize(largestFile: p.releaseBytes)
        if let hostMbps { (p.hostUpload, p.hostDownload) = (hostMbps * 1e6 / 8, hostMbps * 1e6 / 8) }
        if let hostUpMbps { p.hostUpload = hostUpMbps * 1e6 / 8 }
        if let hostDownMbps { p.hostDownload = hostDownMbps * 1e6 / 8 }
        if let cdns { p.cdns = cdns }
        if let peerCDNs { p.peerCDNs = peerCDNs }
        if let cdnMbps { p.cdnUpload = cdnMbps * 1e6 / 8 }
        if let installSeconds { p.installSeconds = installSeconds }
        p.failureRate = failureRate
        if let fastBeat { p.fastBeatSeconds = fastBeat }
        if let sweepSeconds { p.sweepSeconds = sweepSeconds }
        p.seed = seed
        p.maxConcurrent = maxConcurrent
        // A peer serves uplink / downlink downloads at once (the planner's rule).
        p.planner.peerFanout = peerFanout ?? max(1, Int(p.hostUpload / p.hostDownload))
        if let sourcesPerOrder { p.planner.sourcesPerOrder = sourcesPerOrder }
        if let cdnSeeds { p.planner.cdnSeeds = cdnSeeds }
        if let fallbackPatience { p.swarm.fallbackPatience = fallbackPatience }
        if let availabilityLatencyMs { p.availabilityLatency = availabilityLatencyMs / 1000 }
        if let maxPerSource { p.swarm.maxPerSource = maxPerSource }
        if let maxInFlight { p.swarm.maxInFlight = maxInFlight }
        if let uploadSlots { p.swarm.uploadSlots = uploadSlots }
        if let uploadQueue { p.swarm.uploadQueue = uploadQueue }
        if let hedgeFactor { p.swarm.hedgeFactor = hedgeFactor }
        if let nearPeers { p.planner.nearPeers = nearPeers }
        if let announcedPeers { p.swarm.announcedPeers = announcedPeers }
        if let seedOriginHolders { p.swarm.seedOriginHolders = seedOriginHolders }
        if let pacedDownloads { p.pacedDownload = pacedDownloads ? p.hostDownload : nil }
        if p.pacedDownload != nil { p.pacedDownload = p.hostDownload }
        if let swarmPeers { p.planner.swarmPeers = swarmPeers }
        let pieceTime = Double(p.pieceBytes) / p.hostDownload
        p.stepSeconds = stepMs.map { $0 / 1000 } ?? min(0.010, max(0.0005, pieceTime * Double(p.swarm.maxInFlight) / 32))
        p.timeLimitSeconds = timeLimitHours * 3600
        p.elideBeats = !noElide
        if let traceSeconds { p.traceSeconds = traceSeconds }
        if !instantHBS {
            var hbs = HBSService.measured
            hbs.instances = hbsInstances
            if let hbsAnswersPerSecond { hbs.answersPerSecond = hbsAnswersPerSecond }
            if let hbsCreateMicroseconds { hbs.createSecondsPerHost = hbsCreateMicroseconds / 1e6 }
            p.hbs = hbs
        }
        return p
    }

    func run() async throws {
        try await Bench.run { try measureAndReport() }
    }

    private func measureAndReport() throws {
        let parameters = parameters()
        var results: [SimulationResult] = []
        Bench.progress("simulate: \(parameters.hosts) hosts, \(SimulationReport.size(parameters.releaseBytes)) in \(parameters.pieceCount) pieces, step \(Format.fixed(parameters.stepSeconds * 1000, 2)) ms")
        for mode in try parsedModes() {
            results.append(try simulate(parameters, mode, label: mode.rawValue))
        }
        var full: SimulationResult?
        if !noFullRollout {
            var staged = parameters
            staged.canary = canary
            staged.batchPercentages = try parsedBatches()
            full = try simulate(staged, .peerPiece, label: "full rollout (peer-piece, canary \(canary), batches \(batches)%)")
        }
        let report = SimulationReport(parameters: parameters, results: results, fullRollout: full, canary: canary, batches: batches)
        report.table.print()
        report.engineTable.print()
        let stem = name ?? "simulate-N\(parameters.hosts)-\(SimulationReport.today)"
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let jsonPath = "\(output)/\(stem).json", svgPath = "\(output)/\(stem).svg"
        try report.fileJSON().write(to: URL(fileURLWithPath: jsonPath))
        try Data(SimulationPlot(report: report).svg.utf8).write(to: URL(fileURLWithPath: svgPath))
        Bench.progress("wrote \(jsonPath) and \(svgPath)")
        print(try report.lineJSON())
    }

    private func simulate(_ parameters: SimulationParameters, _ mode: SimulationMode, label: String) throws -> SimulationResult {
        Bench.progress("\(label): running")
        var simulator = FleetSimulator(parameters: parameters, mode: mode)
        let result: SimulationResult
        let pieces = Double(parameters.hosts * parameters.pieceCount), bytes = Double(parameters.releaseBytes)
        let trace: ((FleetSimulator.TraceSample) -> Void)? = traceSeconds == nil ? nil : { sample in
            Bench.progress("\(label) t=\(Format.fixed(sample.time, 3)): \(sample.transfers) transfers, pieces \(Format.fixed(100 * Double(sample.verifiedPieces) / pieces, 1)) %, ordered \(sample.ordered), verified \(sample.verified), confirmed \(sample.confirmed), origin/F \(Format.fixed(sample.originBytes / bytes, 2)), peers/F \(Format.fixed(sample.peerBytes / bytes, 2))")
        }
        do { result = try simulator.run(trace: trace) } catch { throw BenchError.check("\(label): the engine refused the rollout: \(error)") }
        let t100 = result.t100.map { Format.fixed($0, 1) + " s" } ?? "not reached"
        Bench.progress("\(label): t100 \(t100) (virtual), \(Format.fixed(result.wallSeconds, 1)) s wall, engine \(Format.fixed(result.engine.totalSeconds, 1)) s")
        return result
    }
}
