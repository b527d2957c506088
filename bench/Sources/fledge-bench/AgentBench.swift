import ArgumentParser
import Foundation
import ProcessHarness

/// `fledge-bench agent`: what one fledge-agent costs its host, idle and while serving a peer at
/// its upload cap, against falcon-agent's published resident size and an nginx worker serving
/// the same transfer at the same rate in the same run.
struct AgentBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Resident memory and CPU of fledge-agent idle and serving a peer at its cap, vs falcon-agent (14.7 MB) and a rate-limited nginx worker.",
        discussion: """
            fledge-agent, fledge-hbs and fledge-seeder are the release builds beside this \
            executable. A random file is published (fledge-seeder keygen + publish) as release \
            fledge-agent 9.9.9 and copied into the agent's store, so the agent holds it verified. \
            The agent beats to a fledge-hbs and serves peers with peerUploadBytesPerSecond = \
            --rate. Idle: its RSS (VmRSS) is sampled every second and its CPU time taken over \
            --seconds. Serving: one curl after another downloads the file from the agent for \
            --seconds, sampled the same way. Reference: one nginx worker (sendfile on, \
            limit_rate = --rate) under the same curl loop. falcon-agent's 14.7 MB resident is a \
            constant from the article, not measured here. Floor: tiny programs built here with cc \
            and swiftc that load only what the agent must (libcurl and OpenSSL; the Swift runtime \
            and FoundationEssentials, statically) report their own RSS: the agent's idle RSS \
            cannot go below their sum.
            """)

    /// falcon-agent's resident memory as the article gives it, in MB.
    static let falconAgentRSSMB = 14.7

    @Option(help: "Seconds of each measured phase (agent idle, agent serving, nginx serving).")
    var seconds: Int = 60

    @Option(help: "Upload cap in MB/s (10^6 bytes per second): the agent's peerUploadBytesPerSecond and nginx's limit_rate.")
    var rate: Double = 50

    @Option(name: .customLong("size-mib"), help: "Size of the released file in MiB.")
    var sizeMiB: Int = 64

    @Option(name: .customLong("settle-seconds"), help: "Seconds the agent runs before the idle phase is measured.")
    var settleSeconds: Int = 5

    @Option(help: "Directory to create the temporary directory in (default: /tmp). It is removed at the end.")
    var workdir: String?

    func validate() throws {
        if seconds <= 0 { throw ValidationError("--seconds must be positive") }
        if rate <= 0 { throw ValidationError("--rate must be positive") }
        if sizeMiB <= 0 { throw ValidationError("--size-mib must be positive") }
        if settleSeconds < 0 { throw ValidationError("--settle-seconds must not be negative") }
    }

    private var rateBytes: Int64 { Int64(rate * 1e6) }
    private var sizeBytes: Int64 { Int64(sizeMiB) << 20 }

    /// Everything measured, for the report.
    private struct Results {
        var idle: ResourceUsage
        var metricsRSSMB: Double?
        var statusRSSMB: Double
        /// The idle agent's resident memory split: anonymous (heap, stacks) and file-backed
        /// (executable and shared libraries), MB.
        var anonMB: Double
        var fileMB: Double
        var serve: ResourceUsage
        var serveTransfer: CurlLoop.Result
        var nginx: ResourceUsage
        var nginxTransfer: CurlLoop.Result
        /// The required parts alone (`AgentFloor`).
        var floor: [AgentFloor.Probe]
        /// The release binary measured, and stripped of symbols and debug info (what a package
        /// would ship; nil without `strip`), bytes.
        var binaryBytes: Int64
        var strippedBytes: Int64?
    }

    func run() async throws {
        try await Bench.run {
            try ReleaseProducts.use(["fledge-agent", "fledge-hbs", "fledge-seeder"])
            let results = try await Cleanup.shared.withTemporaryDirectory(in: workdir, label: "fledge-bench-agent") { directory in
                try await measure(in: directory)
            }
            report(results)
        }
    }

    private func measure(in directory: TemporaryDirectory) async throws -> Results {
        Bench.progress("floor: the required libraries and runtime alone, in tiny programs")
        let floor = await AgentFloor.measure(in: directory)
        let binary = Binaries.path("fledge-agent")
        func size(_ path: String) -> Int64? { ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value }
        let binaryBytes = size(binary) ?? 0
        let stripped = directory.string + "/fledge-agent.stripped"
        let strippedBytes = (try? await ChildProcess.run(try Binaries.tool("strip"), ["-o", stripped, binary])).flatMap { _ in size(stripped) }
        try directory.makeDirectory("www")
        let payload = try directory.randomFile("www/\(AgentUnderTest.fileName)", size: Int(sizeBytes))
        Bench.progress("publishing \(sizeMiB) MiB as \(AgentUnderTest.releaseName) \(AgentUnderTest.releaseVersion), starting fledge-hbs and fledge-agent")
        let agent = try await AgentUnderTest.start(in: directory, payload: payload.string, rate: rateBytes)
        let idle: ResourceUsage, serve: ResourceUsage, serveTransfer: CurlLoop.Result
        var metricsRSSMB: Double?, statusRSSMB = 0.0, anonMB = 0.0, fileMB = 0.0
        do {
            try await Task.sleep(for: .seconds(settleSeconds))
            Bench.progress("agent idle, \(seconds) s")
            (idle, _) = try await ResourceSampler.measure(pid: agent.agent.pid) {
                try await Task.sleep(for: .seconds(seconds))
            }
            metricsRSSMB = try await agent.metric("process_resident_memory_bytes").map { $0 / 1e6 }
            statusRSSMB = Double(ResourceSampler.rssBytes(of: agent.agent.pid) ?? 0) / 1e6
            anonMB = Double(ResourceSampler.statusBytes(of: agent.agent.pid, "RssAnon") ?? 0) / 1e6
            fileMB = Double(ResourceSampler.statusBytes(of: agent.agent.pid, "RssFile") ?? 0) / 1e6
            Bench.progress("agent serving one peer at its cap, \(seconds) s")
            (serve, serveTransfer) = try await ResourceSampler.measure(pid: agent.agent.pid) {
                try await CurlLoop.run(url: agent.fileURL, size: sizeBytes, seconds: seconds)
            }
            guard agent.agent.isRunning else { throw BenchError.check("fledge-agent died: \(agent.agent.stderr.suffix(800))") }
            await agent.stop()
        } catch {
            await agent.stop()
            throw error
        }

        Bench.progress("nginx worker serving the same file at limit_rate \(rateBytes), \(seconds) s")
        let nginx = try await CappedNginx.start(
            root: directory.appending("www"), prefix: directory.appending("nginx"), rate: rateBytes)
        do {
            let (usage, transfer) = try await ResourceSampler.measure(pid: nginx.worker) {
                try await CurlLoop.run(url: "\(nginx.baseURL)/\(AgentUnderTest.fileName)", size: sizeBytes, seconds: seconds)
            }
            await nginx.stop()
            return Results(idle: idle, metricsRSSMB: metricsRSSMB, statusRSSMB: statusRSSMB, anonMB: anonMB, fileMB: fileMB, serve: serve,
                           serveTransfer: serveTransfer, nginx: usage, nginxTransfer: transfer, floor: floor, binaryBytes: binaryBytes,
                           strippedBytes: strippedBytes)
        } catch {
            await nginx.stop()
            throw error
        }
    }

    private func report(_ results: Results) {
        let falcon = Self.falconAgentRSSMB
        var table = Table(
            "agent: one fledge-agent idle and serving one peer at its \(Format.fixed(rate)) MB/s cap (\(sizeMiB) MiB file), \(seconds) s per phase",
            columns: [("process", .left), ("phase", .left), ("RSS mean MB", .right), ("RSS max MB", .right),
                      ("CPU % of a core", .right), ("MB/s", .right), ("downloads", .right)])
        table.add(["fledge-agent", "idle", Format.fixed(results.idle.meanRSSMB), Format.fixed(results.idle.maxRSSMB),
                   Format.fixed(results.idle.cpuPercent, 2), "-", "-"])
        table.add(["fledge-agent", "serving", Format.fixed(results.serve.meanRSSMB), Format.fixed(results.serve.maxRSSMB),
                   Format.fixed(results.serve.cpuPercent, 2), Format.fixed(results.serveTransfer.megabytesPerSecond),
                   "\(results.serveTransfer.downloads)"])
        table.add(["nginx worker (limit_rate)", "serving", Format.fixed(results.nginx.meanRSSMB), Format.fixed(results.nginx.maxRSSMB),
                   Format.fixed(results.nginx.cpuPercent, 2), Format.fixed(results.nginxTransfer.megabytesPerSecond),
                   "\(results.nginxTransfer.downloads)"])
        table.add(["falcon-agent (article)", "-", Format.fixed(falcon), "-", "-", "-", "-"])
        for probe in results.floor {
            table.add([probe.name, "-", Format.fixed(probe.rssMB), "-", "-", "-", "-"])
        }
        let metrics = results.metricsRSSMB.map { Format.fixed($0) } ?? "missing"
        table.note("RSS: VmRSS from /proc/PID/status, sampled every second; CPU: utime + stime from /proc/PID/stat over the phase's wall time")
        table.note("the agent's own /metrics after the idle phase: process_resident_memory_bytes = \(metrics) MB (VmRSS read just after: \(Format.fixed(results.statusRSSMB)) MB)")
        table.note("the idle agent's RSS is \(Format.fixed(results.anonMB)) MB anonymous (heap, stacks) + \(Format.fixed(results.fileMB)) MB file-backed (its executable and shared libraries, shareable with other processes)")
        table.note("idle RSS / falcon-agent: \(Format.ratio(results.idle.meanRSSMB / falcon)); serving CPU / nginx worker: \(Format.ratio(results.serve.cpuPercent / results.nginx.cpuPercent)); serving RSS / nginx worker: \(Format.ratio(results.serve.meanRSSMB / results.nginx.meanRSSMB))")
        table.note("one curl at a time, back to back (curl start-up between downloads included in MB/s); lower is better for RSS and CPU")
        table.note("the release binary: \(Format.fixed(Double(results.binaryBytes) / 1e6)) MB on disk (symbols and debug info included), \(results.strippedBytes.map { Format.fixed(Double($0) / 1e6) } ?? "?") MB stripped; the Swift runtime and FoundationEssentials are inside when built as the Makefile does (--static-swift-stdlib)")
        if let required = AgentFloor.requiredMB(results.floor) {
            table.note("floor rows: tiny programs built here (cc; swiftc -static-stdlib) that load only what the agent must: libcurl and OpenSSL, the Swift runtime and FoundationEssentials; together (libc counted once) \(Format.fixed(required)) MB resident before any of Fledge's code, NIO or threads; idle agent / that floor: \(Format.ratio(results.idle.meanRSSMB / required))")
        }
        table.print()

        var json = JSONLine(bench: "agent")
        json.add("seconds", seconds)
        json.add("size_mib", sizeMiB)
        json.add("rate_mbps", rate, digits: 1)
        json.add("idle_rss_mb", results.idle.meanRSSMB, digits: 2)
        json.add("idle_rss_max_mb", results.idle.maxRSSMB, digits: 2)
        json.add("idle_cpu_pct", results.idle.cpuPercent, digits: 3)
        json.add("metrics_rss_mb", results.metricsRSSMB ?? .nan, digits: 2)
        json.add("idle_rss_anon_mb", results.anonMB, digits: 2)
        json.add("idle_rss_file_mb", results.fileMB, digits: 2)
        json.add("serve_rss_mb", results.serve.meanRSSMB, digits: 2)
        json.add("serve_rss_max_mb", results.serve.maxRSSMB, digits: 2)
        json.add("serve_cpu_pct", results.serve.cpuPercent, digits: 2)
        json.add("serve_mbps", results.serveTransfer.megabytesPerSecond, digits: 1)
        json.add("nginx_worker_rss_mb", results.nginx.meanRSSMB, digits: 2)
        json.add("nginx_worker_rss_max_mb", results.nginx.maxRSSMB, digits: 2)
        json.add("nginx_worker_cpu_pct", results.nginx.cpuPercent, digits: 2)
        json.add("nginx_mbps", results.nginxTransfer.megabytesPerSecond, digits: 1)
        json.add("falcon_agent_rss_mb", falcon, digits: 1)
        json.add("ratio_idle_rss_vs_falcon", results.idle.meanRSSMB / falcon)
        json.add("ratio_serve_rss_vs_nginx", results.serve.meanRSSMB / results.nginx.meanRSSMB)
        json.add("ratio_serve_cpu_vs_nginx", results.serve.cpuPercent / results.nginx.cpuPercent)
        json.add("agent_binary_bytes", Int(results.binaryBytes))
        if let stripped = results.strippedBytes { json.add("agent_binary_stripped_bytes", Int(stripped)) }
        for probe in results.floor { json.add("floor_\(probe.key)_rss_mb", probe.rssMB, digits: 2) }
        if let required = AgentFloor.requiredMB(results.floor) { json.add("floor_required_mb", required, digits: 2) }
        json.add("cap_held", abs(results.serveTransfer.megabytesPerSecond / rate - 1) <= 0.1)
        json.add("cpu", Bench.cpuModel)
        json.add("nproc", ProcessInfo.processInfo.activeProcessorCount)
        print(json.text)
    }
}
