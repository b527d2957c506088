import Foundation
import LocalFleet

/// The output of `fledge-bench fleet`: a table and, as the last line, one JSON object on
/// standard output; the same text (after a machine and command header), a JSON file with the
/// curves, and an SVG plot under the results directory, named `fleet-N<agents>-<date>`
/// (`fleet-N<agents>-netns-<date>` with kernel-shaped links, so one does not overwrite the other).
struct FleetReport {
    var shape: FleetShape
    var results: [FleetModeResult]
    var command: [String]

    func write(to directory: String) throws {
        let table = self.table.rendered
        let line = jsonLine
        print(table + "\n")
        print(line)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = "\(directory)/fleet-N\(shape.agents)\(shape.network == .namespaces ? "-netns" : "")-\(Self.date)"
        let header = "# machine: \(Self.machine) | nproc: \(ProcessInfo.processInfo.activeProcessorCount) | cpu: \(Bench.cpuModel) | date: \(ISO8601DateFormatter().string(from: Date()))\n# command: \(command.joined(separator: " "))\n"
        try Data((header + table + "\n\n" + line + "\n").utf8).write(to: URL(fileURLWithPath: base + ".txt"))
        try JSONSerialization.data(withJSONObject: fullJSON, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: base + ".json"))
        try Data(FleetPlot.svg(title: title, hosts: shape.agents, results: results).utf8).write(to: URL(fileURLWithPath: base + ".svg"))
        Bench.progress("wrote \(base).txt, .json and .svg")
    }

    private var title: String {
        "fleet: \(shape.agents) agents, F = \(Format.size(shape.releaseBytes)), agent \(Format.fixed(mbps(shape.agentBytesPerSecond))) Mbit/s up/down, origin \(Format.fixed(mbps(shape.originBytesPerSecond))) Mbit/s, links: \(links)"
    }

    /// Who shaped the links: "fledge rate limits" or "kernel tbf".
    private var links: String { shape.network.linksDescription }

    private var table: Table {
        var table = Table(
            title + ", pieces of \(Format.size(shape.pieceBytes))",
            columns: [("mode", .left), ("origins", .right), ("t50 s", .right), ("t90 s", .right), ("t100 s", .right),
                      ("T_min s", .right), ("t100/T_min", .right), ("origin-only s", .right), ("t100/origin-only", .right),
                      ("origin egress/F", .right), ("peer served/F", .right), ("fleet CPU %", .right), ("machine busy %", .right)])
        for result in results {
            table.add([
                result.mode.rawValue, "\(result.mode.origins(cdnOrigins: shape.cdnOrigins))", seconds(result.t50), seconds(result.t90),
                seconds(result.t100), Format.fixed(result.model.minimumSeconds), result.ratioToMinimum.map { Format.fixed($0, 2) } ?? "-",
                Format.fixed(result.model.originOnlySeconds), result.ratioToOriginOnly.map { Format.fixed($0, 2) } ?? "-",
                Format.fixed(result.originEgressOverF, 2), Format.fixed(Double(result.peerBytes) / Double(result.fileBytes), 2),
                result.cpu.map { Format.fixed($0.fleetPercent) } ?? "-", result.cpu.map { Format.fixed($0.machineBusy * 100) } ?? "-",
            ])
        }
        table.note("t50/t90/t100: seconds from the rollout's POST until 50/90/100 % of hosts were confirmed on 1.1.0 (HBS host phase done), read every 200 ms")
        table.note("T_min = max(F/u_s, F/d, N*F/(u_s + N*u)), u = 0 with peers off; origin-only = max(N*F/u_s, F/d); u_s = the mode's origins together")
        table.note("egress: bytes each server logged answering GETs (origins; agents' peer servers), over F = the published release's bytes")
        table.note("CPU: fleet = HBS, origins, supervisors with their agents: their CPU seconds / (wall seconds x \(ProcessInfo.processInfo.activeProcessorCount) cores) over the rollout; machine = /proc/stat, everything on it (the kernel's forwarding and shaping included)")
        switch shape.network {
        case .loopback:
            table.note("links: fledge rate limits on 127.0.0.1 (seeder --rate, agents' downloadBytesPerSecond and peerUploadBytesPerSecond)")
        case .namespaces:
            let agent = TokenBucket(payloadBytesPerSecond: shape.agentBytesPerSecond), origin = TokenBucket(payloadBytesPerSecond: shape.originBytesPerSecond)
            table.note("links: kernel tbf, a network namespace per host on a bridge; agent up and down \(agent.tcArguments.joined(separator: " ")), origin up \(origin.tcArguments.joined(separator: " ")) (rate = cap x 1514/1448: frames, so the payload gets the cap); Fledge's rate limits off")
        }
        for result in results {
            if let failure = result.failure { table.note("\(result.mode.rawValue) did not complete: \(failure)") }
            table.note("\(result.mode.rawValue): agents report \(Format.fixed(Double(result.reportedCDNBytes) / Double(result.fileBytes), 2)) F from the CDN, \(Format.fixed(Double(result.reportedPeerBytes) / Double(result.fileBytes), 2)) F from peers; CPU seconds: HBS \(Format.fixed(result.cpu?.hbsSeconds ?? 0)), origins \(Format.fixed(result.cpu?.originSeconds ?? 0)), hosts \(Format.fixed(result.cpu?.hostSeconds ?? 0)) (agents, supervisors, self-tests), bench process \(Format.fixed(result.cpu?.benchSeconds ?? 0))")
            if let links = result.links {
                let f = Double(result.fileBytes)
                table.note("\(result.mode.rawValue): the kernel's links carried (frame bytes, retransmissions included, over F) origins up \(Format.fixed(Double(links.originsUp) / f, 2)), agents up \(Format.fixed(Double(links.agentsUp) / f, 2)), agents down \(Format.fixed(Double(links.agentsDown) / f, 2)); the agents' downlink queues dropped \(links.agentDownlinkDrops) packets")
            }
        }
        return table
    }

    /// The last line: per mode the figures to compare, and the run's shape.
    private var jsonLine: String {
        var json = JSONLine(bench: "fleet")
        json.add("agents", shape.agents)
        json.add("size_mib", Int(shape.releaseBytes >> 20))
        json.add("piece_kib", Int(shape.pieceBytes >> 10))
        json.add("agent_mbps", mbps(shape.agentBytesPerSecond), digits: 2)
        json.add("origin_mbps", mbps(shape.originBytesPerSecond), digits: 2)
        json.add("links", links)
        json.add("modes", raw: Self.compact(Dictionary(uniqueKeysWithValues: results.map { ($0.mode.rawValue, Self.figures($0)) })))
        json.add("cpu", Bench.cpuModel)
        json.add("nproc", ProcessInfo.processInfo.activeProcessorCount)
        return json.text
    }

    private static func figures(_ result: FleetModeResult) -> [String: Any] {
        [
            "t50_s": number(result.t50), "t90_s": number(result.t90), "t100_s": number(result.t100),
            "t_min_s": number(result.model.minimumSeconds), "ratio_t_min": number(result.ratioToMinimum),
            "origin_egress_over_f": number(result.originEgressOverF),
            "fleet_cpu_pct": number(result.cpu?.fleetPercent),
        ]
    }

    private var fullJSON: [String: Any] {
        [
            "bench": "fleet", "agents": shape.agents, "release_bytes": shape.releaseBytes, "piece_bytes": shape.pieceBytes,
            "agent_bytes_per_second": shape.agentBytesPerSecond, "origin_bytes_per_second": shape.originBytesPerSecond,
            "cdn_origins": shape.cdnOrigins, "fast_beat_seconds": shape.fastBeatSeconds, "command": command.joined(separator: " "),
            "links": links,
            "cpu": Bench.cpuModel, "nproc": ProcessInfo.processInfo.activeProcessorCount,
            "modes": results.map { result -> [String: Any] in
                Self.figures(result).merging([
                    "mode": result.mode.rawValue, "file_bytes": result.fileBytes, "pieces": result.pieces,
                    "origin_only_s": Self.number(result.model.originOnlySeconds), "ratio_origin_only": Self.number(result.ratioToOriginOnly),
                    "origin_bytes": result.originBytes, "peer_bytes": result.peerBytes,
                    "reported_cdn_bytes": result.reportedCDNBytes, "reported_peer_bytes": result.reportedPeerBytes,
                    "fleet_cpu_share": Self.number(result.cpu?.fleetShare), "machine_busy": Self.number(result.cpu?.machineBusy),
                    "bench_cpu_seconds": Self.number(result.cpu?.benchSeconds),
                    "hbs_cpu_seconds": Self.number(result.cpu?.hbsSeconds),
                    "origin_cpu_seconds": Self.number(result.cpu?.originSeconds),
                    "host_cpu_seconds": Self.number(result.cpu?.hostSeconds),
                    "kernel_links": result.links.map { links -> Any in
                        ["origins_up_bytes": links.originsUp, "agents_up_bytes": links.agentsUp, "agents_down_bytes": links.agentsDown,
                         "agent_downlink_drops": links.agentDownlinkDrops]
                    } ?? NSNull(),
                    "confirmed_curve": result.curve.map { [Self.number($0.seconds), $0.done] },
                    "failure": result.failure ?? NSNull(),
                ]) { $1 }
            },
        ]
    }

    /// Rounded to milliseconds; null when absent or not finite.
    private static func number(_ value: Double?) -> Any {
        guard let value, value.isFinite else { return NSNull() }
        return (value * 1000).rounded() / 1000
    }

    private static func compact(_ object: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func seconds(_ value: Double?) -> String { value.map { Format.fixed($0) } ?? "-" }
    private func mbps(_ bytesPerSecond: Int64) -> Double { Double(bytesPerSecond) * 8 / 1e6 }

    private static var date: String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }

    private static var machine: String {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(field(name.sysname)) \(field(name.nodename)) \(field(name.release)) \(field(name.machine))"
    }
}
