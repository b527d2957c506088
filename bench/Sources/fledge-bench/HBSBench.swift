import ArgumentParser
import FledgeTesting
import Foundation
import SystemPackage

/// `fledge-bench hbs`: heartbeats per second fledge-hbs sustains (embedded store, Redis store)
/// against a hello-world route on the same server framework, all driven by wrk in one run.
struct HBSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hbs",
        abstract: "Heartbeats/s and p99 of fledge-hbs (embedded store, Redis) vs a hello-world Hummingbird route, driven by wrk.",
        discussion: """
            fledge-hbs (the release build beside this executable) runs as child processes on free \
            127.0.0.1 ports: one on its embedded store, one on Redis (a redis-server of its own), \
            and the reference, a hello-world Hummingbird 2 server (`fledge-bench hello-server`). \
            wrk POSTs the same JSON heartbeats to each, hostnames cycling through --hosts \
            distinct names. Each fledge-hbs is warmed up until every host is registered (first \
            beats are journaled); the measured passes then see known idle hosts. Finally a \
            rollout is created on the embedded one and measured again. The JSON ratios are \
            fledge-hbs / hello-world POST of the best runs; goals (reported, not asserted): \
            0.5 embedded, 0.3 Redis.
            """)

    @Option(help: "Seconds of each measured wrk pass.")
    var seconds: Int = 10

    @Option(name: .customLong("warmup-seconds"), help: "Seconds of each warm-up pass (repeated until every host is registered).")
    var warmupSeconds: Int = 5

    @Option(help: "wrk connections (keep-alive, each sends its next request once the answer is in).")
    var connections: Int = 64

    @Option(help: "wrk threads.")
    var threads: Int = 2

    @Option(help: "Distinct simulated hosts (hostnames the heartbeats cycle through).")
    var hosts: Int = 10_000

    @Option(name: .customLong("repeat"), help: "Measured passes of each server; the best one counts.")
    var repeats: Int = 2

    @Option(help: "Directory to create the temporary directory in (default: /tmp). It is removed at the end.")
    var workdir: String?

    func validate() throws {
        if seconds <= 0 { throw ValidationError("--seconds must be positive") }
        if warmupSeconds <= 0 { throw ValidationError("--warmup-seconds must be positive") }
        if threads <= 0 { throw ValidationError("--threads must be positive") }
        if connections < threads { throw ValidationError("--connections must be at least --threads") }
        if hosts < threads { throw ValidationError("--hosts must be at least --threads") }
        if repeats <= 0 { throw ValidationError("--repeat must be positive") }
    }

    /// Warm-up passes at most, per fledge-hbs, before giving up on registering every host.
    private static let maxWarmups = 12

    /// The rollout of the last configuration: every host (1.0.0) targeted, 100 at a time.
    static let rolloutJSON = """
        {"release":{"name":"fledge-agent","version":"2.0.0"},"sources":[{"url":"http://cdn.test","capacityMbps":100000}],"maxConcurrent":100}
        """

    /// One measured wrk pass.
    private struct Pass {
        var report: Wrk.Report
        /// CPU microseconds of the serving processes per answered request.
        var cpuMicrosPerRequest: Double
        /// Upgrade orders fledge-hbs sent per second (0 for the hello server).
        var ordersPerSecond: Double
    }

    /// Everything measured, for the report.
    private struct Results {
        var passes: [HBSTarget: [Pass]] = [:]
        /// Seconds of warm-up until every host was registered, per fledge-hbs.
        var registration: [HBSTarget: Int] = [:]
        /// `hbs_rollout_hosts` by phase after the rollout's warm-up.
        var rolloutPhases: [String: Int] = [:]
        /// Upgrade orders sent during the rollout's warm-up.
        var rolloutWarmupOrders = 0

        func best(_ target: HBSTarget) -> Pass? { passes[target]?.max { $0.report.requestsPerSecond < $1.report.requestsPerSecond } }

        func samples(_ target: HBSTarget) -> Samples {
            var samples = Samples()
            for pass in passes[target] ?? [] { samples.add(pass.report.requestsPerSecond) }
            return samples
        }

        var socketErrors: Int { passes.values.joined().map(\.report.socketErrors).reduce(0, +) }
    }

    func run() async throws {
        try await Bench.run { try await measureAndReport() }
    }

    private func measureAndReport() async throws {
        let wrk = try Wrk(threads: threads, connections: connections)
        _ = try Binaries.tool("redis-server")
        let script = HeartbeatScript(hosts: hosts, threads: threads)
        let results = try await Cleanup.shared.withTemporaryDirectory(in: workdir, label: "fledge-bench-hbs") { directory in
            let scriptPath = directory.appending("heartbeat.lua")
            try script.write(to: scriptPath)
            Bench.progress("starting the hello server, fledge-hbs (embedded), redis-server and fledge-hbs (Redis)")
            let servers = try await HBSServers.start(in: directory)
            do {
                let results = try await measure(servers, wrk: wrk, script: scriptPath)
                await servers.stop()
                return results
            } catch {
                await servers.stop()
                throw error
            }
        }
        report(results, bodyBytes: script.body(host: 0).utf8.count)
    }

    private func measure(_ servers: HBSServers, wrk: Wrk, script: FilePath) async throws -> Results {
        var results = Results()
        var cursor = 0
        Bench.progress("warming up the hello server (\(warmupSeconds) s)")
        _ = try await pass(.helloPost, servers, wrk: wrk, script: script, seconds: warmupSeconds, cursor: &cursor)
        for target in [HBSTarget.embedded, .redis] {
            results.registration[target] = try await register(target, servers, wrk: wrk, script: script, cursor: &cursor)
        }

        let order: [HBSTarget] = [.helloPost, .embedded, .redis, .helloGet]
        for run in 0..<repeats {
            for index in order.indices {
                let target = order[(index + run) % order.count]
                let measured = try await pass(target, servers, wrk: wrk, script: script, seconds: seconds, cursor: &cursor)
                results.passes[target, default: []].append(measured)
                progress(run: run, target, measured)
            }
        }
        for target in [HBSTarget.embedded, .redis] { try await checkAgents(target, servers) }

        Bench.progress("creating a rollout on fledge-hbs (embedded): \(Self.rolloutJSON)")
        let (status, body) = try await servers.embedded.admin("POST", "/v1/rollouts", json: Self.rolloutJSON)
        guard (200..<300).contains(status) else {
            throw BenchError.check("POST /v1/rollouts answered \(status): \(body.map { "\($0)" } ?? "no JSON")")
        }
        Bench.progress("warming up the rollout (\(warmupSeconds) s)")
        let warm = try await pass(.embeddedRollout, servers, wrk: wrk, script: script, seconds: warmupSeconds, cursor: &cursor)
        results.rolloutWarmupOrders = Int((warm.ordersPerSecond * Double(warmupSeconds)).rounded())
        for (name, value) in try await HBSServers.metrics(of: servers.embedded) where name.hasPrefix("hbs_rollout_hosts{") {
            guard let phase = name.split(separator: "phase=\"").last?.split(separator: "\"").first else { continue }
            results.rolloutPhases[String(phase)] = Int(value)
        }
        guard (results.rolloutPhases["admitted"] ?? 0) > 0 else {
            throw BenchError.check("the rollout admitted no host during its warm-up: \(results.rolloutPhases)")
        }
        for run in 0..<repeats {
            let measured = try await pass(.embeddedRollout, servers, wrk: wrk, script: script, seconds: seconds, cursor: &cursor)
            results.passes[.embeddedRollout, default: []].append(measured)
            progress(run: run, .embeddedRollout, measured)
        }
        try await checkAgents(.embeddedRollout, servers)
        return results
    }

    /// One wrk pass at `target`, with the server's CPU time and orders over it. Any answer
    /// other than 2xx makes the measurement void. Each wrk thread starts `cursor` hosts into
    /// its cycle of hostnames, and `cursor` moves on by the requests each thread made, so the
    /// next pass carries on with the hosts after these.
    private func pass(
        _ target: HBSTarget, _ servers: HBSServers, wrk: Wrk, script: FilePath, seconds: Int, cursor: inout Int
    ) async throws -> Pass {
        let hbs = servers.hbs(target)
        let ordersBefore = try await orders(of: hbs)
        let cpuBefore = servers.cpuSeconds(target)
        let report = try await wrk.run(
            url: servers.url(target), seconds: seconds, script: target.sendsHeartbeats ? script : nil, scriptArguments: ["\(cursor)"])
        if target.sendsHeartbeats { cursor = (cursor + report.requests / threads) % hosts }
        let cpu = servers.cpuSeconds(target) - cpuBefore
        let ordersAfter = try await orders(of: hbs)
        guard report.non2xx == 0 else {
            throw BenchError.check("\(target.server): \(report.non2xx) of \(report.requests) answers were not 2xx")
        }
        guard report.requests > 0 else { throw BenchError.check("\(target.server): wrk got no answer at all") }
        return Pass(report: report, cpuMicrosPerRequest: cpu / Double(report.requests) * 1e6,
                    ordersPerSecond: (ordersAfter - ordersBefore) / Double(seconds))
    }

    /// Upgrade orders `hbs` has sent so far (none from the hello server).
    private func orders(of hbs: HBSProcess?) async throws -> Double {
        guard let hbs else { return 0 }
        return try await HBSServers.metrics(of: hbs)["hbs_orders_total"] ?? 0
    }

    /// Warm-up passes until every host has beaten once (its first beat is journaled, later
    /// beats of a known idle host are not); returns the seconds it took.
    private func register(
        _ target: HBSTarget, _ servers: HBSServers, wrk: Wrk, script: FilePath, cursor: inout Int
    ) async throws -> Int {
        guard let hbs = servers.hbs(target) else { return 0 }
        var agents = 0
        for attempt in 1...Self.maxWarmups {
            Bench.progress("warming up \(target.server) (\(warmupSeconds) s, pass \(attempt))")
            let warm = try await pass(target, servers, wrk: wrk, script: script, seconds: warmupSeconds, cursor: &cursor)
            agents = Int(try await HBSServers.metrics(of: hbs)["hbs_agents"] ?? 0)
            Bench.progress("  \(Format.fixed(warm.report.requestsPerSecond)) req/s, \(agents) of \(hosts) hosts registered")
            if agents >= hosts { return attempt * warmupSeconds }
        }
        throw BenchError.check("\(target.server): only \(agents) of \(hosts) hosts registered after \(Self.maxWarmups * warmupSeconds) s of warm-up")
    }

    /// The fledge-hbs behind `target` knows exactly `hosts` agents: every name was distinct and
    /// none went missing.
    private func checkAgents(_ target: HBSTarget, _ servers: HBSServers) async throws {
        guard let hbs = servers.hbs(target) else { return }
        let agents = Int(try await HBSServers.metrics(of: hbs)["hbs_agents"] ?? 0)
        guard agents == hosts else { throw BenchError.check("\(target.server) knows \(agents) agents, expected \(hosts)") }
    }

    private func progress(run: Int, _ target: HBSTarget, _ pass: Pass) {
        Bench.progress("run \(run + 1)/\(repeats): \(target.server), \(target.request): \(Format.fixed(pass.report.requestsPerSecond)) req/s, p99 \(Format.fixed(pass.report.p99Milliseconds, 2)) ms")
    }

    private func report(_ results: Results, bodyBytes: Int) {
        let reference = results.best(.helloPost)?.report.requestsPerSecond ?? 0
        let referenceMedian = results.samples(.helloPost).median
        let goals: [HBSTarget: Double] = [.embedded: 0.5, .redis: 0.3]
        var table = Table(
            "hbs: heartbeats over 127.0.0.1, wrk -t\(threads) -c\(connections), \(seconds) s passes, \(hosts) distinct hosts, best and median of \(repeats) run(s)",
            columns: [("server", .left), ("request", .left), ("best req/s", .right), ("median req/s", .right),
                      ("p99 ms", .right), ("B/answer", .right), ("CPU us/req", .right), ("vs hello POST", .right), ("goal", .right)])
        let rows: [HBSTarget] = [.helloPost, .helloGet, .embedded, .redis, .embeddedRollout]
        for target in rows {
            let best = results.best(target)
            let rate = best?.report.requestsPerSecond ?? 0
            table.add([
                target.server, target.request, Format.fixed(rate), Format.fixed(results.samples(target).median),
                Format.fixed(best?.report.p99Milliseconds ?? .nan, 2), Format.fixed(best?.report.bytesPerResponse ?? .nan, 0),
                Format.fixed(best?.cpuMicrosPerRequest ?? .nan, 1), Format.ratio(rate / reference),
                goals[target].map { ">= \($0)" } ?? "-",
            ])
        }
        table.note("Closed loop: \(connections) keep-alive connections over \(threads) wrk thread(s); each request POSTs a \(bodyBytes)-byte JSON heartbeat of an idle host (GET / excepted), hostname host-NNNNN cycling through \(hosts) names, no two wrk threads sharing one.")
        table.note("The reference is the hello-world POST: the same Hummingbird 2 HTTP/1 server reading the same body and answering constant JSON ({\"nextBeatSeconds\":60}, what fledge-hbs answers an idle host); GET / is for information.")
        table.note("p99 ms, B/answer (headers included) and CPU us/req are those of each server's best run; CPU is the server process's user + system time (plus redis-server's for Redis) over the pass, divided by the answers.")
        let registration = [HBSTarget.embedded, .redis].map { "\($0.server) \(results.registration[$0] ?? 0) s" }.joined(separator: ", ")
        table.note("Before measuring, every host was registered by warm-up passes (first beats are made durable: journal + fdatasync, or a Redis MULTI/EXEC with appendfsync always): \(registration).")
        let phases = results.rolloutPhases.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let orders = results.best(.embeddedRollout)?.ordersPerSecond ?? 0
        table.note("Rollout: POST /v1/rollouts to 2.0.0, maxConcurrent 100, one CDN source, every host targeted; after its \(warmupSeconds) s warm-up (\(results.rolloutWarmupOrders) orders sent) hosts by phase: \(phases). Pending hosts get no order but a 1 s beat interval; an admitted host beating idle gets its order again (\(Format.fixed(orders)) orders/s in the best run).")
        for (target, goal) in goals.sorted(by: { $0.value > $1.value }) {
            let ratio = (results.best(target)?.report.requestsPerSecond ?? 0) / reference
            table.note("Goal \(target.server): >= \(goal) x hello POST: \(ratio >= goal ? "met" : "NOT met") (\(Format.ratio(ratio))).")
        }
        if results.socketErrors > 0 { table.note("wrk reported \(results.socketErrors) socket errors (connect/read/write/timeout) over all measured passes.") }
        table.print()

        var json = JSONLine(bench: "hbs")
        json.add("hosts", hosts)
        json.add("seconds", seconds)
        json.add("connections", connections)
        json.add("threads", threads)
        json.add("repeat", repeats)
        json.add("statistic", "best")
        for target in rows {
            json.add("\(target.rawValue)_rps", results.best(target)?.report.requestsPerSecond ?? 0, digits: 1)
        }
        for target in [HBSTarget.embedded, .redis, .embeddedRollout] {
            json.add("ratio_\(target.rawValue)", (results.best(target)?.report.requestsPerSecond ?? 0) / reference)
        }
        for target in [HBSTarget.embedded, .redis] {
            json.add("ratio_\(target.rawValue)_median", results.samples(target).median / referenceMedian)
        }
        for target in rows {
            json.add("p99_ms_\(target.rawValue)", results.best(target)?.report.p99Milliseconds ?? .nan)
        }
        json.add("goal_ratio_embedded", 0.5, digits: 1)
        json.add("goal_ratio_redis", 0.3, digits: 1)
        json.add("goal_embedded_met", (results.best(.embedded)?.report.requestsPerSecond ?? 0) / reference >= 0.5)
        json.add("goal_redis_met", (results.best(.redis)?.report.requestsPerSecond ?? 0) / reference >= 0.3)
        json.add("embedded_rollout_orders_per_s", orders, digits: 1)
        json.add("socket_errors", results.socketErrors)
        json.add("cpu", Bench.cpuModel)
        json.add("nproc", ProcessInfo.processInfo.activeProcessorCount)
        json.add("measured", "wrk -t\(threads) -c\(connections) -d\(seconds)s --latency, POST /v1/heartbeat with \(bodyBytes)-byte JSON heartbeats of \(hosts) distinct idle hosts (all registered in warm-up), to fledge-hbs (embedded store; Redis store; embedded with a rollout active) and to a hello-world Hummingbird 2 route reading the body and answering constant JSON; best of \(repeats) pass(es)")
        print(json.text)
    }
}
