import FleetSimulation
import Foundation

/// The figures of `fledge-bench simulate`: per mode t50/t90/t100 of hosts confirmed, T_min for
/// the mode's caps and the ratio, origin egress over F, distribution and control-plane time;
/// origin-only (computed); the full rollout's time; what the engine cost. As tables for people,
/// a JSON file with timelines, and the one JSON line.
struct SimulationReport {
    let parameters: SimulationParameters
    let results: [SimulationResult]
    let fullRollout: SimulationResult?
    let canary: Int
    let batches: String

    static var today: String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }

    var releaseBytes: Double { Double(parameters.releaseBytes) }

    /// Bytes as MiB or KiB when they are whole ones, else as decimal MB.
    static func size(_ bytes: Int64) -> String {
        if bytes % (1 << 10) == 0 { return Format.size(bytes) }
        return bytes % 1_000_000 == 0 ? "\(bytes / 1_000_000) MB" : "\(bytes) B"
    }

    /// One mode's figures, as both JSON outputs carry them.
    struct ModeFigures: Codable {
        var t50_s: Double?
        var t90_s: Double?
        var t100_s: Double?
        var t_min_s: Double
        var ratio_t_min: Double?
        var origin_egress_over_f: Double
        var peer_bytes_over_f: Double
        var distribution_s: Double?
        var ratio_distribution_t_min: Double?
        var control_plane_s: Double?
        var ratio_origin_only: Double?
        var failed_hosts: Int
        var failures: Int
        var settled: Bool
        var wall_s: Double
    }

    func figures(_ result: SimulationResult) -> ModeFigures {
        let bound = parameters.minimumTime(result.mode)
        return ModeFigures(
            t50_s: result.t50.map(Self.rounded), t90_s: result.t90.map(Self.rounded), t100_s: result.t100.map(Self.rounded),
            t_min_s: Self.rounded(bound), ratio_t_min: result.t100.map { Self.rounded($0 / bound) },
            origin_egress_over_f: Self.rounded(result.originBytes / releaseBytes),
            peer_bytes_over_f: Self.rounded(result.peerBytes / releaseBytes),
            distribution_s: result.distributionSeconds.map(Self.rounded),
            ratio_distribution_t_min: result.distributionSeconds.map { Self.rounded($0 / bound) },
            control_plane_s: result.controlPlaneSeconds.map(Self.rounded),
            ratio_origin_only: result.t100.map { Self.rounded($0 / parameters.originOnlyTime) },
            failed_hosts: result.failedHosts, failures: result.failures, settled: result.settled,
            wall_s: Self.rounded(result.wallSeconds))
    }

    static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    private func seconds(_ value: Double?) -> String {
        guard let value else { return "-" }
        return value >= 600 ? "\(Format.fixed(value, 0)) (\(Format.fixed(value / 3600, 2)) h)" : Format.fixed(value, 2)
    }

    private func ratio(_ value: Double?) -> String { value.map { Format.fixed($0, 2) } ?? "-" }

    var table: Table {
        var table = Table(
            "simulate: \(parameters.hosts) hosts, F = \(Self.size(parameters.releaseBytes)) (\(parameters.pieceCount) pieces of \(Self.size(parameters.pieceBytes))), virtual seconds from the rollout's creation",
            columns: [("mode", .left), ("t50", .right), ("t90", .right), ("t100", .right), ("T_min", .right), ("t100/T_min", .right),
                      ("distribution", .right), ("dist/T_min", .right), ("control plane", .right), ("origin/F", .right),
                      ("peers/F", .right), ("failed", .right), ("wall s", .right)])
        for result in results {
            let figures = figures(result)
            table.add([result.mode.rawValue + (result.settled ? "" : " (unfinished)"), seconds(result.t50), seconds(result.t90),
                       seconds(result.t100), seconds(figures.t_min_s), ratio(figures.ratio_t_min),
                       seconds(result.distributionSeconds), ratio(figures.ratio_distribution_t_min), seconds(result.controlPlaneSeconds),
                       Format.fixed(figures.origin_egress_over_f, 2), Format.fixed(figures.peer_bytes_over_f, 2),
                       "\(result.failedHosts)", Format.fixed(result.wallSeconds, 1)])
        }
        let p = parameters
        table.note("hosts: \(Format.fixed(p.hostUpload * 8 / 1e6, 3)) Mbit/s up, \(Format.fixed(p.hostDownload * 8 / 1e6, 3)) Mbit/s down; CDNs of \(Format.fixed(p.cdnUpload * 8 / 1e6, 3)) Mbit/s each: origin 1 (announcing room for every host: falcon plans nothing), cdn-batches \(p.cdnCount(.cdnBatches)), peer modes \(p.cdnCount(.peerPiece)); \(p.idcs) idcs x \(p.racksPerIDC) racks; install+restart \(Format.fixed(p.installSeconds, 2)) s; beats every \(Format.fixed(p.fastBeatSeconds, 2)) s; sweeps every \(Format.fixed(p.sweepSeconds, 0)) s and when a retry or deadline is due; failure rate \(p.failureRate); seed \(p.seed).")
        let seeds = p.planner.cdnSeeds.map(String.init) ?? "capacity/downlink"
        let agents = "agents (the agent's PieceScheduler): \(p.swarm.maxInFlight) pieces in flight, \(p.swarm.maxPerSource) per source, \(p.swarm.uploadSlots) upload slot\(p.swarm.uploadSlots == 1 ? "" : "s") per peer and \(p.swarm.uploadQueue) queued per slot, availability pushed in \(Format.fixed(p.availabilityLatency * 1000, 1)) ms, hedge after \(Format.fixed(p.swarm.hedgeFactor, 1)) piece times, fallback after \(Format.fixed(p.swarm.fallbackPatience, 1)) s without progress\(p.pacedDownload == nil ? "" : ", piece starts paced at the download cap")"
        table.note("\(agents); planner: peerFanout \(p.planner.peerFanout), sourcesPerOrder \(p.planner.sourcesPerOrder), cdnSeeds \(seeds), swarmPeers \(p.planner.swarmPeers) (\(p.planner.nearPeers) nearest); rates recomputed every \(Format.fixed(p.stepSeconds * 1000, 2)) ms at most.")
        table.note("t50/t90/t100: hosts confirmed (HBS marked them done). T_min = max(F/u_s, F/d, N*F/(u_s + sum u_i)) with the mode's CDNs, and the hosts' uplinks only where peers serve.")
        table.note("distribution: first order to last verified release; control plane: rollout start to the last host's first order; origin/F: bytes the CDNs sent over F.")
        if let hbs = p.hbs {
            table.note("HBS at the rollout's start (HBSService, measured on the real fledge-hbs): \(hbs.instances) instance\(hbs.instances == 1 ? "" : "s"), the rollout durable \(Format.fixed(hbs.createSecondsPerHost * 1e6, 1)) us per host after its POST, then each instance answering its share of the waiting hosts (the first batch first) at \(Format.fixed(hbs.answersPerSecond, 0)) hosts/s, the others \(Format.fixed(hbs.followSeconds * 1000, 0)) ms later.")
        } else {
            table.note("HBS answers every waiting host the instant the rollout is created (--instant-hbs).")
        }
        table.note("origin-only, computed (max(N*F/u_origin, F/d), one CDN): \(seconds(p.originOnlyTime)) s" + (results.first { $0.mode == .origin }?.t100.map { "; simulated origin mode: \(seconds($0)) s" } ?? "") + ".")
        if let fullRollout {
            table.note("full rollout (peer-piece, canary \(canary), then batches of \(batches) % of the rest): t100 \(seconds(fullRollout.t100)) s, t50 \(seconds(fullRollout.t50)) s, control plane \(seconds(fullRollout.controlPlaneSeconds)) s.")
        }
        return table
    }

    var engineTable: Table {
        var table = Table(
            "simulate: what the real RolloutEngine cost (wall clock, this machine)",
            columns: [("run", .left), ("beats", .right), ("elided", .right), ("order µs", .right), ("waiting µs", .right),
                      ("other µs", .right), ("sweeps", .right), ("sweep ms", .right), ("slowest sweep ms", .right),
                      ("create ms", .right), ("engine s", .right), ("wall s", .right), ("transfers", .right), ("steps", .right)])
        for (label, result) in results.map({ ($0.mode.rawValue, $0) }) + (fullRollout.map { [("full rollout", $0)] } ?? []) {
            let engine = result.engine
            table.add([label, "\(result.beats)", "\(engine.elidedBeats)", Format.fixed(engine.orderBeats.microsecondsEach, 1),
                       Format.fixed(engine.waitingBeats.microsecondsEach, 1), Format.fixed(engine.otherBeats.microsecondsEach, 1),
                       "\(engine.sweeps.count)", Format.fixed(engine.sweeps.microsecondsEach / 1000, 2),
                       Format.fixed(engine.sweeps.slowest * 1000, 2), Format.fixed(engine.create.seconds * 1000, 1),
                       Format.fixed(engine.totalSeconds, 1), Format.fixed(result.wallSeconds, 1), "\(result.pieceTransfers)",
                       "\(result.steps)"])
        }
        table.note("order: beats answered with an order (the planner runs); waiting: hosts pending, no order; other: hosts upgrading, done or failed. µs per call.")
        table.note("elided: beats the simulator did not send because the engine's answer could not differ (hosts done or failed; pending hosts of a batch that just got no order, nothing changed since); each still reaches the engine every \(Format.fixed(parameters.refreshSeconds, 0)) s.")
        return table
    }

    // MARK: JSON

    private struct Line: Codable {
        var bench = "simulate"
        var hosts: Int
        var size_bytes: Int64
        var pieces: Int
        var origin_only_s: Double
        /// HBS's instances at the rollout's start; nil: it answered at once.
        var hbs_instances: Int?
        var modes: [String: ModeFigures]
        var full_rollout_t100_s: Double?
        var full_rollout_control_plane_s: Double?
        var wall_s: Double
    }

    private var line: Line {
        Line(
            hosts: parameters.hosts, size_bytes: parameters.releaseBytes, pieces: parameters.pieceCount,
            origin_only_s: Self.rounded(parameters.originOnlyTime), hbs_instances: parameters.hbs?.instances,
            modes: Dictionary(uniqueKeysWithValues: results.map { ($0.mode.rawValue, figures($0)) }),
            full_rollout_t100_s: fullRollout?.t100.map(Self.rounded),
            full_rollout_control_plane_s: fullRollout?.controlPlaneSeconds.map(Self.rounded),
            wall_s: Self.rounded(results.reduce(0) { $0 + $1.wallSeconds } + (fullRollout?.wallSeconds ?? 0)))
    }

    /// The last line of standard output.
    func lineJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(line), as: UTF8.self)
    }

    private struct Run: Codable {
        var label: String
        var mode: String
        var figures: ModeFigures
        var orders: Int
        var resent_orders: Int
        var beats: Int
        var elided_beats: Int
        var engine_seconds: Double
        var engine_us_per_order_beat: Double
        var engine_us_per_waiting_beat: Double
        var engine_us_per_other_beat: Double
        var engine_ms_per_sweep: Double
        var engine_ms_create: Double
        var piece_transfers: Int
        var peak_transfers: Int
        var reallocations: Int
        var steps: Int
        var virtual_s: Double
        /// [seconds, hosts confirmed], at most a few hundred points.
        var confirmed: [[Double]]
    }

    private struct File: Codable {
        var bench = "simulate"
        var date: String
        var machine: String
        var parameters: [String: Double]
        var origin_only_s: Double
        var runs: [Run]
    }

    static func timeline(_ times: [Double], points: Int = 400) -> [[Double]] {
        guard !times.isEmpty else { return [] }
        let every = max(1, times.count / points)
        var out: [[Double]] = [[0, 0]]
        for index in stride(from: every - 1, to: times.count, by: every) { out.append([rounded(times[index]), Double(index + 1)]) }
        if out.last?[1] != Double(times.count) { out.append([rounded(times.last!), Double(times.count)]) }
        return out
    }

    private func run(_ label: String, _ result: SimulationResult) -> Run {
        let engine = result.engine
        return Run(
            label: label, mode: result.mode.rawValue, figures: figures(result), orders: result.orders, resent_orders: result.resentOrders,
            beats: result.beats, elided_beats: engine.elidedBeats, engine_seconds: Self.rounded(engine.totalSeconds),
            engine_us_per_order_beat: Self.rounded(engine.orderBeats.microsecondsEach),
            engine_us_per_waiting_beat: Self.rounded(engine.waitingBeats.microsecondsEach),
            engine_us_per_other_beat: Self.rounded(engine.otherBeats.microsecondsEach),
            engine_ms_per_sweep: Self.rounded(engine.sweeps.microsecondsEach / 1000), engine_ms_create: Self.rounded(engine.create.seconds * 1000),
            piece_transfers: result.pieceTransfers, peak_transfers: result.peakTransfers, reallocations: result.reallocations,
            steps: result.steps, virtual_s: Self.rounded(result.virtualSeconds), confirmed: Self.timeline(result.confirmTimes))
    }

    /// The results file: every figure, the parameters, and each run's timeline.
    func fileJSON() throws -> Data {
        let p = parameters
        let file = File(
            date: ISO8601DateFormatter().string(from: Date()),
            machine: "\(ProcessInfo.processInfo.activeProcessorCount) cpu, \(Bench.cpuModel)",
            parameters: [
                "hosts": Double(p.hosts), "idcs": Double(p.idcs), "racks_per_idc": Double(p.racksPerIDC),
                "size_bytes": Double(p.releaseBytes), "piece_bytes": Double(p.pieceBytes), "pieces": Double(p.pieceCount),
                "host_up_bytes_per_s": p.hostUpload, "host_down_bytes_per_s": p.hostDownload, "cdns": Double(p.cdns),
                "cdn_bytes_per_s": p.cdnUpload, "peer_cdns": Double(p.cdnCount(.peerPiece)), "sweep_s": p.sweepSeconds, "install_s": p.installSeconds, "failure_rate": p.failureRate,
                "fast_beat_s": p.fastBeatSeconds, "seed": Double(p.seed), "step_s": p.stepSeconds,
                "max_in_flight": Double(p.swarm.maxInFlight), "max_per_source": Double(p.swarm.maxPerSource),
                "availability_latency_s": p.availabilityLatency, "upload_slots": Double(p.swarm.uploadSlots),
                "upload_queue_per_slot": Double(p.swarm.uploadQueue), "hedge_factor": p.swarm.hedgeFactor,
                "paced_download_bytes_per_s": p.pacedDownload ?? 0, "fallback_patience_s": p.swarm.fallbackPatience,
                "peer_fanout": Double(p.planner.peerFanout), "sources_per_order": Double(p.planner.sourcesPerOrder),
                "cdn_seeds": Double(p.planner.cdnSeeds ?? -1), "swarm_peers": Double(p.planner.swarmPeers),
                "near_peers": Double(p.planner.nearPeers),
                "canary": Double(canary), "max_concurrent": Double(p.maxConcurrent ?? p.hosts),
            ],
            origin_only_s: Self.rounded(p.originOnlyTime),
            runs: results.map { run($0.mode.rawValue, $0) } + (fullRollout.map { [run("full rollout, batches \(batches)", $0)] } ?? []))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(file)
    }
}
