import ArgumentParser
import Foundation
import ProcessHarness
import Synchronization
import SystemPackage

/// `fledge-bench hbs`: heartbeats per second fledge-hbs sustains (embedded store, Redis store)
/// against a hello-world route on the same server framework, all driven by wrk in one run.
struct HBSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hbs",
        abstract: "Heartbeats/s and p99 of fledge-hbs (authenticated beats: embedded, Redis, TLS; and anonymous) vs hello-world Hummingbird routes, driven by wrk.",
        discussion: """
            fledge-hbs (the release build beside this executable) runs as child processes on free \
            127.0.0.1 ports: on its embedded store with per-host credentials, the same with \
            --anonymous-beats, on Redis (a redis-server of its own), and on its embedded store \
            over TLS; the references are a hello-world Hummingbird 2 server (`fledge-bench \
            hello-server`), plain and over the same TLS. Every host is enrolled first (each \
            server issues its own secrets); wrk POSTs the same JSON heartbeats to each, hostnames \
            cycling through --hosts distinct names, each beat with its host's Fledge-Host and \
            Authorization headers (the hello servers and the anonymous fledge-hbs get the same \
            bytes). Each fledge-hbs is beaten until every host is registered (first beats are \
            journaled); the measured passes then see known idle hosts. Finally a rollout is \
            created on the embedded one and on the Redis one, each measured again with the cost \
            of its sweeps. Ratios are of the best runs; goals \
            (reported, not asserted): embedded >= 0.5 and Redis >= 0.3 x hello POST, \
            authenticated >= 0.85 x anonymous, TLS >= 0.5 x hello over TLS.
            """)

    @Option(help: "Seconds of each measured wrk pass.")
    var seconds: Int = 10

    @Option(name: .customLong("warmup-seconds"), help: "Seconds of each warm-up pass (the hello servers, a rollout); registration runs until every host is registered.")
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

    /// Seconds at most, per fledge-hbs, before giving up on registering every host.
    private static let registrationLimit = 60

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
        /// Commands redis-server processed per answered request (fledge-hbs on Redis only):
        /// the beats' and the sweeps' over the pass.
        var redisCommandsPerRequest: Double?
    }

    /// Everything measured, for the report.
    private struct Results {
        var passes: [HBSTarget: [Pass]] = [:]
        /// Seconds from the registration pass's start until every host was registered (every
        /// instance's `hbs_agents`, polled every 0.25 s), per fledge-hbs.
        var registration: [HBSTarget: Double] = [:]
        /// Seconds to enrol every host, per fledge-hbs with credentials.
        var enrolment: [HBSTarget: Double] = [:]
        /// `hbs_rollout_hosts` by phase after the rollout's warm-up, per rollout row.
        var rolloutPhases: [HBSTarget: [String: Int]] = [:]
        /// Upgrade orders sent during the rollout's warm-up, per rollout row.
        var rolloutWarmupOrders: [HBSTarget: Int] = [:]
        /// Mean milliseconds of a sweep over the measured passes, per rollout row.
        var sweepMilliseconds: [HBSTarget: Double] = [:]
        /// Seconds from the rollout's POST to its answer (the rollout durable), per rollout row.
        var rolloutCreation: [HBSTarget: Double] = [:]

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

    /// The fledge-hbs servers that take authenticated beats, each enrolling the hosts anew.
    private static let enrolled: [HBSTarget] = [.embedded, .redis, .embeddedTLS]

    private func measureAndReport() async throws {
        let wrk = try Wrk(threads: threads, connections: connections)
        _ = try Binaries.tool("redis-server")
        let plain = HeartbeatScript(hosts: hosts, threads: threads)
        let results = try await Cleanup.shared.withTemporaryDirectory(in: workdir, label: "fledge-bench-hbs") { directory in
            Bench.progress("starting the hello servers (plain, TLS), fledge-hbs (embedded; anonymous; TLS), redis-server and fledge-hbs (Redis)")
            let servers = try await HBSServers.start(in: directory)
            do {
                var results = Results()
                var scripts: [HBSTarget: [FilePath]] = [:]
                let names = (0..<hosts).map(plain.name(host:))
                for target in Self.enrolled {
                    Bench.progress("enrolling \(hosts) hosts at \(target.server)")
                    let started = ContinuousClock.now
                    let secrets = try await HBSServers.enrol(names, at: servers.hbs(target)!, ca: servers.ca)
                    results.enrolment[target] = (ContinuousClock.now - started).seconds
                    let secretsPath = directory.appending("secrets-\(target.rawValue).txt")
                    try Data((secrets.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: secretsPath.string))
                    var script = plain
                    script.secrets = secretsPath
                    let scriptPath = directory.appending("heartbeat-\(target.rawValue).lua")
                    try script.write(to: scriptPath)
                    scripts[target] = [scriptPath]
                    if target == .redis {
                        // The pair: hosts 0..<N/2 beat the first instance, the rest the second.
                        scripts[.redisPair] = try [0, 1].map { half in
                            var part = HeartbeatScript(hosts: hosts / 2 + (half == 1 ? hosts % 2 : 0), threads: Self.halved(threads))
                            (part.first, part.fleet, part.secrets) = (half * (hosts / 2), hosts, secretsPath)
                            let path = directory.appending("heartbeat-\(target.rawValue)-half\(half).lua")
                            try part.write(to: path)
                            return path
                        }
                    }
                }
                // The others get the embedded server's beats, byte for byte.
                for target in [HBSTarget.helloPost, .helloGet, .helloTLS, .embeddedAnonymous, .embeddedRollout] {
                    scripts[target] = scripts[.embedded]
                }
                scripts[.redisRollout] = scripts[.redis]
                results = try await measure(servers, wrk: wrk, scripts: scripts, results: results)
                await servers.stop()
                return results
            } catch {
                await servers.stop()
                throw error
            }
        }
        report(results, bodyBytes: plain.body(host: 0).utf8.count)
    }

    /// wrk threads and connections of each of the pair's two wrk processes: half of each.
    static func halved(_ count: Int) -> Int { max(1, count / 2) }

    private func measure(_ servers: HBSServers, wrk: Wrk, scripts: [HBSTarget: [FilePath]], results: Results) async throws -> Results {
        var results = results
        var cursor = 0
        Bench.progress("warming up the hello servers (\(warmupSeconds) s each)")
        for hello in [HBSTarget.helloPost, .helloTLS] {
            _ = try await pass(hello, servers, wrk: wrk, script: scripts[hello]!, seconds: warmupSeconds, cursor: &cursor)
        }
        let beaten: [HBSTarget] = [.embedded, .embeddedAnonymous, .redis, .redisPair, .embeddedTLS]
        for target in beaten {
            let seconds = try await register(target, servers, wrk: wrk, script: scripts[target]!, cursor: &cursor)
            // The pair's hosts are the Redis row's, already registered: its pass only waits for
            // the second instance to know them, which is no registration time.
            if target != .redisPair { results.registration[target] = seconds }
        }

        let order: [HBSTarget] = [.helloPost, .embedded, .embeddedAnonymous, .redis, .redisPair, .helloTLS, .embeddedTLS, .helloGet]
        for run in 0..<repeats {
            for index in order.indices {
                let target = order[(index + run) % order.count]
                let measured = try await pass(target, servers, wrk: wrk, script: scripts[target]!, seconds: seconds, cursor: &cursor)
                results.passes[target, default: []].append(measured)
                progress(run: run, target, measured)
            }
        }
        for target in beaten { try await checkAgents(target, servers) }

        for target in [HBSTarget.embeddedRollout, .redisRollout] {
            try await measureRollout(target, servers, wrk: wrk, script: scripts[target]!, results: &results, cursor: &cursor)
        }
        return results
    }

    /// A rollout created on `target`'s fledge-hbs, warmed up, then measured; with the cost of
    /// its sweeps over the measured passes (`hbs_sweep_duration_seconds`).
    private func measureRollout(
        _ target: HBSTarget, _ servers: HBSServers, wrk: Wrk, script: [FilePath], results: inout Results, cursor: inout Int
    ) async throws {
        let hbs = servers.hbs(target)!
        Bench.progress("creating a rollout on \(target.server): \(Self.rolloutJSON)")
        let posted = ContinuousClock.now
        let (status, body) = try await hbs.admin("POST", "/v1/rollouts", json: Self.rolloutJSON)
        results.rolloutCreation[target] = (ContinuousClock.now - posted).seconds
        guard (200..<300).contains(status) else {
            throw BenchError.check("POST /v1/rollouts answered \(status): \(body.map { "\($0)" } ?? "no JSON")")
        }
        Bench.progress("warming up the rollout (\(warmupSeconds) s)")
        let warm = try await pass(target, servers, wrk: wrk, script: script, seconds: warmupSeconds, cursor: &cursor)
        results.rolloutWarmupOrders[target] = Int((warm.ordersPerSecond * Double(warmupSeconds)).rounded())
        let metrics = try await servers.metrics(of: hbs)
        for (name, value) in metrics where name.hasPrefix("hbs_rollout_hosts{") {
            guard let phase = name.split(separator: "phase=\"").last?.split(separator: "\"").first else { continue }
            results.rolloutPhases[target, default: [:]][String(phase)] = Int(value)
        }
        guard (results.rolloutPhases[target]?["admitted"] ?? 0) > 0 else {
            throw BenchError.check("the rollout admitted no host during its warm-up: \(results.rolloutPhases[target] ?? [:])")
        }
        let before = (metrics["hbs_sweep_duration_seconds_sum"] ?? 0, metrics["hbs_sweep_duration_seconds_count"] ?? 0)
        for run in 0..<repeats {
            let measured = try await pass(target, servers, wrk: wrk, script: script, seconds: seconds, cursor: &cursor)
            results.passes[target, default: []].append(measured)
            progress(run: run, target, measured)
        }
        let after = try await servers.metrics(of: hbs)
        let sweeps = (after["hbs_sweep_duration_seconds_count"] ?? 0) - before.1
        if sweeps > 0 { results.sweepMilliseconds[target] = ((after["hbs_sweep_duration_seconds_sum"] ?? 0) - before.0) / sweeps * 1000 }
        try await checkAgents(target, servers)
    }

    /// One wrk pass at `target`, with the server's CPU time and orders over it. Any answer
    /// other than 2xx makes the measurement void. Each wrk thread starts `cursor` hosts into
    /// its cycle of hostnames, and `cursor` moves on by the requests each thread made, so the
    /// next pass carries on with the hosts after these. The pair's two instances are beaten
    /// at once, each by a wrk of its own with half the threads and connections and its half
    /// of the hosts (`script`'s two). With `done`, the pass ends as soon as `done` holds.
    private func pass(
        _ target: HBSTarget, _ servers: HBSServers, wrk: Wrk, script: [FilePath], seconds: Int, cursor: inout Int,
        until done: (@Sendable () -> Bool)? = nil
    ) async throws -> Pass {
        let hbs = servers.hbs(target)
        let ordersBefore = try await orders(of: hbs, servers)
        let commandsBefore = target.onRedis ? try await servers.redisCommands() : 0
        let cpuBefore = servers.cpuSeconds(target)
        let report: Wrk.Report
        if target == .redisPair {
            let half = try Wrk(threads: Self.halved(threads), connections: Self.halved(connections))
            let instances = servers.instances(target)
            let start = cursor
            report = .together(try await withThrowingTaskGroup(of: Wrk.Report.self) { group in
                for (instance, script) in zip(instances, script) {
                    group.addTask { try await half.run(url: "\(instance.agentURL)/v1/heartbeat", seconds: seconds, script: script, scriptArguments: ["\(start)"], until: done) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            })
            cursor = (cursor + report.requests / (2 * half.threads)) % hosts
        } else {
            report = try await wrk.run(
                url: servers.url(target), seconds: seconds, script: target.sendsHeartbeats ? script.first : nil, scriptArguments: ["\(cursor)"],
                until: done)
            if target.sendsHeartbeats { cursor = (cursor + report.requests / threads) % hosts }
        }
        let cpu = servers.cpuSeconds(target) - cpuBefore
        let commands = target.onRedis ? try await servers.redisCommands() - commandsBefore - 1 : nil  // less INFO itself
        let ordersAfter = try await orders(of: hbs, servers)
        guard report.non2xx == 0 else {
            throw BenchError.check("\(target.server): \(report.non2xx) of \(report.requests) answers were not 2xx")
        }
        guard report.requests > 0 else { throw BenchError.check("\(target.server): wrk got no answer at all") }
        return Pass(report: report, cpuMicrosPerRequest: cpu / Double(report.requests) * 1e6,
                    ordersPerSecond: (ordersAfter - ordersBefore) / Double(seconds),
                    redisCommandsPerRequest: commands.map { $0 / Double(report.requests) })
    }

    /// Upgrade orders `hbs` has sent so far (none from the hello server).
    private func orders(of hbs: HBSProcess?, _ servers: HBSServers) async throws -> Double {
        guard let hbs else { return 0 }
        return try await servers.metrics(of: hbs)["hbs_orders_total"] ?? 0
    }

    /// One warm-up pass that ends once every host has beaten once (its first beat is journaled,
    /// later beats of a known idle host are not) and every instance of `target` knows it;
    /// returns the seconds until they did, from the pass's start (`/metrics` polled every
    /// 0.25 s). Each wrk thread walks its whole cycle of names before it beats any host again,
    /// so the time to the last host is the server's: passes of fixed length, each carrying on
    /// from the threads' mean request count, left a few hundred hosts of the busiest thread to
    /// a later pass.
    private func register(
        _ target: HBSTarget, _ servers: HBSServers, wrk: Wrk, script: [FilePath], cursor: inout Int
    ) async throws -> Double {
        let instances = servers.instances(target)
        guard !instances.isEmpty else { return 0 }
        let hosts = self.hosts
        let registered = Registered()
        let started = ContinuousClock.now
        let watch = Task {
            while !Task.isCancelled {
                var least = hosts
                for hbs in instances { least = min(least, Int((try? await servers.metrics(of: hbs)["hbs_agents"]) ?? 0)) }
                if least >= hosts { return registered.mark((ContinuousClock.now - started).seconds) }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { watch.cancel() }
        let limit = Self.registrationLimit
        Bench.progress("registering \(hosts) hosts at \(target.server) (at most \(limit) s)")
        let warm = try await pass(target, servers, wrk: wrk, script: script, seconds: limit, cursor: &cursor, until: { registered.seconds != nil })
        watch.cancel()  // a pass that ran to its limit leaves the watcher polling
        await watch.value
        guard let seconds = registered.seconds else {
            var agents = hosts
            for hbs in instances { agents = min(agents, Int(try await servers.metrics(of: hbs)["hbs_agents"] ?? 0)) }
            throw BenchError.check("\(target.server): only \(agents) of \(hosts) hosts registered after \(limit) s of warm-up")
        }
        Bench.progress("  \(Format.fixed(warm.report.requestsPerSecond)) req/s, every host registered after \(Format.fixed(seconds, 1)) s")
        return seconds
    }

    /// When the last host was registered, set once by the watcher and read by wrk's stop check.
    private final class Registered: Sendable {
        private let time = Mutex<Double?>(nil)
        var seconds: Double? { time.withLock { $0 } }
        func mark(_ seconds: Double) { time.withLock { $0 = seconds } }
    }

    /// The fledge-hbs behind `target` knows exactly `hosts` agents: every name was distinct and
    /// none went missing.
    private func checkAgents(_ target: HBSTarget, _ servers: HBSServers) async throws {
        for hbs in servers.instances(target) {
            let agents = Int(try await servers.metrics(of: hbs)["hbs_agents"] ?? 0)
            guard agents == hosts else { throw BenchError.check("\(target.server) (\(hbs.agentURL)) knows \(agents) agents, expected \(hosts)") }
        }
    }

    private func progress(run: Int, _ target: HBSTarget, _ pass: Pass) {
        Bench.progress("run \(run + 1)/\(repeats): \(target.server), \(target.request): \(Format.fixed(pass.report.requestsPerSecond)) req/s, p99 \(Format.fixed(pass.report.p99Milliseconds, 2)) ms")
    }

    /// What each row is compared with: the hello-world POST in the same transport.
    private static func reference(of target: HBSTarget) -> HBSTarget { target.isTLS ? .helloTLS : .helloPost }

    /// Goals (reported, not asserted): a row's ratio to its reference.
    private static let goals: [HBSTarget: Double] = [.embedded: 0.5, .redis: 0.3, .embeddedTLS: 0.5]
    /// Authentication may cost at most 15 % of the beats/s of anonymous beats.
    private static let authenticationGoal = 0.85

    private func report(_ results: Results, bodyBytes: Int) {
        func rate(_ target: HBSTarget) -> Double { results.best(target)?.report.requestsPerSecond ?? 0 }
        func ratio(_ target: HBSTarget) -> Double { rate(target) / rate(Self.reference(of: target)) }
        let authentication = rate(.embedded) / rate(.embeddedAnonymous)
        var table = Table(
            "hbs: heartbeats over 127.0.0.1, wrk -t\(threads) -c\(connections), \(seconds) s passes, \(hosts) distinct hosts, best and median of \(repeats) run(s)",
            columns: [("server", .left), ("request", .left), ("best req/s", .right), ("median req/s", .right),
                      ("p99 ms", .right), ("B/answer", .right), ("CPU us/req", .right), ("vs hello POST", .right), ("goal", .right)])
        let rows: [HBSTarget] = [.helloPost, .helloGet, .embedded, .embeddedAnonymous, .redis, .redisPair, .embeddedRollout, .redisRollout, .helloTLS, .embeddedTLS]
        for target in rows {
            let best = results.best(target)
            table.add([
                target.server, target.request, Format.fixed(rate(target)), Format.fixed(results.samples(target).median),
                Format.fixed(best?.report.p99Milliseconds ?? .nan, 2), Format.fixed(best?.report.bytesPerResponse ?? .nan, 0),
                Format.fixed(best?.cpuMicrosPerRequest ?? .nan, 1), Format.ratio(ratio(target)),
                Self.goals[target].map { ">= \($0)" } ?? "-",
            ])
        }
        table.note("Closed loop: \(connections) keep-alive connections over \(threads) wrk thread(s); each request POSTs a \(bodyBytes)-byte JSON heartbeat of an idle host (GET / excepted) with its Fledge-Host and Authorization: Bearer (64 hex) headers, hostname host-NNNNN cycling through \(hosts) names, no two wrk threads sharing one.")
        table.note("The reference is the hello-world POST in the same transport (TLS rows: hello-world over TLS, same swift-nio-ssl server configuration and certificate): the same Hummingbird 2 HTTP/1 server reading the same request and answering constant JSON ({\"nextBeatSeconds\":60}, what fledge-hbs answers an idle host); GET / is for information.")
        table.note("p99 ms, B/answer (headers included) and CPU us/req are those of each server's best run; CPU is the server process's user + system time (plus redis-server's for Redis) over the pass, divided by the answers.")
        let enrolment = Self.enrolled.map { "\($0.server) \(Format.fixed(results.enrolment[$0] ?? 0, 1)) s" }.joined(separator: ", ")
        table.note("Before measuring, every host was enrolled (POST /v1/enrol with the fleet token, 8 at a time; each binding durable): \(enrolment); and registered by one warm-up pass per server, each wrk thread beating all its hosts once before any again (first beats are made durable: journal + fdatasync, or a Redis MULTI/EXEC with appendfsync always), the last host after: \(results.registration.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.server) \(Format.fixed($0.value, 1)) s" }.joined(separator: ", ")).")
        let orders = results.best(.embeddedRollout)?.ordersPerSecond ?? 0
        for target in [HBSTarget.embeddedRollout, .redisRollout] {
            let phases = (results.rolloutPhases[target] ?? [:]).filter { $0.value > 0 }.sorted { $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            table.note("Rollout on \(target.server): POST /v1/rollouts to 2.0.0, maxConcurrent 100, one CDN source, every host targeted, answered (the rollout durable) in \(Format.fixed(results.rolloutCreation[target] ?? .nan, 3)) s; after its \(warmupSeconds) s warm-up (\(results.rolloutWarmupOrders[target] ?? 0) orders sent) hosts by phase: \(phases). Pending hosts get no order but a beat interval paced by their number; an admitted host beating idle gets its order again (\(Format.fixed(results.best(target)?.ordersPerSecond ?? 0)) orders/s in the best run). A sweep (every second: other instances' changes read, then leases, deadlines, retries) took \(Format.fixed(results.sweepMilliseconds[target] ?? .nan, 2)) ms on average over the measured passes.")
        }
        table.note("Two instances on one Redis: each fledge-hbs beaten by half the hosts from a wrk of its own (-t\(Self.halved(threads)) -c\(Self.halved(connections)) each, at once); together \(Format.fixed(rate(.redisPair))) beats/s, \(Format.ratio(rate(.redisPair) / rate(.redis))) x one instance on Redis in this run; its CPU is both instances' and redis-server's. Both instances, redis-server and both wrk share the same \(ProcessInfo.processInfo.activeProcessorCount) cores: this measures what running as two instances costs, not what a second server adds.")
        let commands = [HBSTarget.redis, .redisPair, .redisRollout].map { "\($0.server) \(Format.fixed(results.best($0)?.redisCommandsPerRequest ?? .nan, 2))" }
        table.note("Redis commands per answered beat (redis-server's total_commands_processed over the best pass, sweeps included): \(commands.joined(separator: ", ")).")
        for (target, goal) in Self.goals.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            table.note("Goal \(target.server): >= \(goal) x \(Self.reference(of: target).server) POST: \(ratio(target) >= goal ? "met" : "NOT met") (\(Format.ratio(ratio(target)))).")
        }
        table.note("Goal authentication: authenticated >= \(Self.authenticationGoal) x anonymous beats/s (embedded): \(authentication >= Self.authenticationGoal ? "met" : "NOT met") (\(Format.ratio(authentication))).")
        if results.socketErrors > 0 { table.note("wrk reported \(results.socketErrors) socket errors (connect/read/write/timeout) over all measured passes.") }
        table.print()

        var json = JSONLine(bench: "hbs")
        json.add("hosts", hosts)
        json.add("seconds", seconds)
        json.add("connections", connections)
        json.add("threads", threads)
        json.add("repeat", repeats)
        json.add("statistic", "best")
        for target in rows { json.add("\(target.rawValue)_rps", rate(target), digits: 1) }
        for target in [HBSTarget.embedded, .embeddedAnonymous, .redis, .redisPair, .embeddedRollout, .redisRollout, .embeddedTLS] {
            json.add("ratio_\(target.rawValue)", ratio(target))
        }
        json.add("ratio_redis_pair_vs_redis", rate(.redisPair) / rate(.redis))
        for target in [HBSTarget.embedded, .redis] {
            json.add("ratio_\(target.rawValue)_median", results.samples(target).median / results.samples(.helloPost).median)
        }
        json.add("ratio_authenticated_vs_anonymous", authentication)
        json.add("ratio_authenticated_vs_anonymous_median", results.samples(.embedded).median / results.samples(.embeddedAnonymous).median)
        for target in rows { json.add("p99_ms_\(target.rawValue)", results.best(target)?.report.p99Milliseconds ?? .nan) }
        for target in rows { json.add("cpu_us_per_req_\(target.rawValue)", results.best(target)?.cpuMicrosPerRequest ?? .nan, digits: 1) }
        for (target, goal) in Self.goals.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            json.add("goal_ratio_\(target.rawValue)", goal, digits: 2)
            json.add("goal_\(target.rawValue)_met", ratio(target) >= goal)
        }
        json.add("goal_authentication", Self.authenticationGoal, digits: 2)
        json.add("goal_authentication_met", authentication >= Self.authenticationGoal)
        for target in Self.enrolled { json.add("enrol_seconds_\(target.rawValue)", results.enrolment[target] ?? 0, digits: 1) }
        json.add("embedded_rollout_orders_per_s", orders, digits: 1)
        json.add("redis_rollout_orders_per_s", results.best(.redisRollout)?.ordersPerSecond ?? 0, digits: 1)
        for target in [HBSTarget.embeddedRollout, .redisRollout] {
            json.add("sweep_ms_\(target.rawValue)", results.sweepMilliseconds[target] ?? .nan, digits: 2)
            json.add("rollout_create_s_\(target.rawValue)", results.rolloutCreation[target] ?? .nan, digits: 3)
        }
        for target in [HBSTarget.redis, .redisPair, .redisRollout] {
            json.add("redis_commands_per_beat_\(target.rawValue)", results.best(target)?.redisCommandsPerRequest ?? .nan, digits: 2)
        }
        for (target, seconds) in results.registration.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            json.add("registration_s_\(target.rawValue)", seconds, digits: 1)
        }
        json.add("socket_errors", results.socketErrors)
        json.add("cpu", Bench.cpuModel)
        json.add("nproc", ProcessInfo.processInfo.activeProcessorCount)
        json.add("measured", "wrk -t\(threads) -c\(connections) -d\(seconds)s --latency, POST /v1/heartbeat with \(bodyBytes)-byte JSON heartbeats of \(hosts) distinct idle hosts (enrolled, all registered in warm-up), each with its Fledge-Host and bearer secret, to fledge-hbs (embedded store; anonymous beats; Redis store; two instances on one Redis; embedded and Redis with a rollout active; embedded over TLS) and to hello-world Hummingbird 2 routes (plain, TLS) reading the request and answering constant JSON; best of \(repeats) pass(es)")
        print(json.text)
    }
}
