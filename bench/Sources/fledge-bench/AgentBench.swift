import ArgumentParser
import FledgeTesting
import Foundation

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
            constant from the article, not measured here.
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
                           serveTransfer: serveTransfer, nginx: usage, nginxTransfer: transfer)
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
        let metrics = results.metricsRSSMB.map { Format.fixed($0) } ?? "missing"
        table.note("RSS: VmRSS from /proc/PID/status, sampled every second; CPU: utime + stime from /proc/PID/stat over the phase's wall time")
        table.note("the agent's own /metrics after the idle phase: process_resident_memory_bytes = \(metrics) MB (VmRSS read just after: \(Format.fixed(results.statusRSSMB)) MB)")
        table.note("the idle agent's RSS is \(Format.fixed(results.anonMB)) MB anonymous (heap, stacks) + \(Format.fixed(results.fileMB)) MB file-backed (its executable and shared libraries, shareable with other processes)")
        table.note("idle RSS / falcon-agent: \(Format.ratio(results.idle.meanRSSMB / falcon)); serving CPU / nginx worker: \(Format.ratio(results.serve.cpuPercent / results.nginx.cpuPercent)); serving RSS / nginx worker: \(Format.ratio(results.serve.meanRSSMB / results.nginx.meanRSSMB))")
        table.note("one curl at a time, back to back (curl start-up between downloads included in MB/s); lower is better for RSS and CPU")
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
        json.add("cap_held", abs(results.serveTransfer.megabytesPerSecond / rate - 1) <= 0.1)
        json.add("cpu", Bench.cpuModel)
        json.add("nproc", ProcessInfo.processInfo.activeProcessorCount)
        print(json.text)
    }
}
