import Fetch
import Foundation
import ProcessHarness
import Transfer
import Wire

/// The servers of `fledge-bench hbs`, each a child process on free 127.0.0.1 ports: the
/// hello-world reference (this executable's hidden `hello-server`) in plain HTTP and over TLS,
/// and fledge-hbs on its embedded store (per-host credentials; anonymous beats; over TLS) and
/// on Redis with a redis-server of its own (and a second instance on the same Redis). `stop()` ends them all; a signal's teardown finds
/// them in `RunningChildren`.
final class HBSServers: Sendable {
    let hello: ChildProcess
    let helloPort: Int
    let helloTLS: ChildProcess
    let helloTLSPort: Int
    let embedded: HBSProcess
    let anonymous: HBSProcess
    let redis: RedisProcess
    let onRedis: HBSProcess
    /// A second instance on the same Redis, sharing the fleet token (and so the hosts' secrets).
    let onRedisToo: HBSProcess
    let overTLS: HBSProcess
    /// The CA the TLS servers' certificate chains to.
    let ca: String

    private init(
        hello: (ChildProcess, Int), helloTLS: (ChildProcess, Int), embedded: HBSProcess, anonymous: HBSProcess, redis: RedisProcess,
        onRedis: HBSProcess, onRedisToo: HBSProcess, overTLS: HBSProcess, ca: String
    ) {
        (self.hello, self.helloPort) = hello
        (self.helloTLS, self.helloTLSPort) = helloTLS
        self.embedded = embedded
        self.anonymous = anonymous
        self.redis = redis
        self.onRedis = onRedis
        self.onRedisToo = onRedisToo
        self.overTLS = overTLS
        self.ca = ca
    }

    /// Starts them all, with their data in `directory`; whatever started is stopped again if
    /// a later one fails.
    static func start(in directory: TemporaryDirectory) async throws -> HBSServers {
        try ReleaseProducts.use(["fledge-hbs"])
        let own = try ReleaseProducts.ownExecutable()
        let tls = try await TestCertificates.make(in: try directory.makeDirectory("tls").string)
        var started: [ChildProcess] = []
        var redis: RedisProcess?
        do {
            let hello = try await LoopbackServer.start("fledge-bench hello-server") { port in
                try ChildProcess(own, ["hello-server", "--listen", "\(Loopback.host):\(port)"])
            }
            started.append(hello.child)
            let helloTLS = try await LoopbackServer.start("fledge-bench hello-server (TLS)") { port in
                try ChildProcess(own, [
                    "hello-server", "--listen", "\(Loopback.host):\(port)", "--tls-certificate", tls.certificate, "--tls-key", tls.key,
                ])
            }
            started.append(helloTLS.child)
            let embedded = try await HBSProcess.start(data: try directory.makeDirectory("hbs-embedded").string)
            started.append(embedded.child)
            let anonymous = try await HBSProcess.start(
                data: try directory.makeDirectory("hbs-anonymous").string, extra: ["--anonymous-beats"])
            started.append(anonymous.child)
            redis = try await RedisProcess.start(directory: try directory.makeDirectory("redis").string)
            let onRedis = try await HBSProcess.start(data: try directory.makeDirectory("hbs-redis").string, extra: ["--redis", redis!.url])
            started.append(onRedis.child)
            let onRedisToo = try await HBSProcess.start(
                data: try directory.makeDirectory("hbs-redis-too").string,
                extra: ["--redis", redis!.url] + (onRedis.fleetTokenFile.map { ["--fleet-token-file", $0] } ?? []))
            started.append(onRedisToo.child)
            let overTLS = try await HBSProcess.start(
                data: try directory.makeDirectory("hbs-tls").string, extra: ["--tls-certificate", tls.certificate, "--tls-key", tls.key])
            return HBSServers(
                hello: hello, helloTLS: helloTLS, embedded: embedded, anonymous: anonymous, redis: redis!, onRedis: onRedis,
                onRedisToo: onRedisToo, overTLS: overTLS, ca: tls.ca)
        } catch {
            for child in started.reversed() { await child.stop(grace: .seconds(2)) }
            redis?.kill()
            throw error
        }
    }

    /// Stops every server: SIGTERM (SIGKILL after a grace period) for fledge-hbs and the hello
    /// servers; redis-server's data is thrown away anyway, so it is killed.
    func stop() async {
        for hbs in [overTLS, onRedisToo, onRedis, anonymous, embedded] { await hbs.child.stop(grace: .seconds(3)) }
        await helloTLS.stop(grace: .seconds(3))
        await hello.stop(grace: .seconds(3))
        redis.kill()
    }

    /// User + system CPU seconds so far of the processes serving `target`: the server, and
    /// redis-server as well for fledge-hbs on Redis.
    func cpuSeconds(_ target: HBSTarget) -> Double {
        switch target {
        case .helloGet, .helloPost: ProcFS.seconds(of: hello.pid)
        case .helloTLS: ProcFS.seconds(of: helloTLS.pid)
        case .redis, .redisRollout, .redisPair:
            instances(target).map { ProcFS.seconds(of: $0.child.pid) }.reduce(0, +) + redisPids.map(ProcFS.seconds(of:)).reduce(0, +)
        default: hbs(target).map { ProcFS.seconds(of: $0.child.pid) } ?? 0
        }
    }

    /// Commands redis-server has processed so far (`INFO stats`).
    func redisCommands() async throws -> Double {
        let info = try await redis.cli(["INFO", "stats"])
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("total_commands_processed:") }),
              let count = Double(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else {
            throw BenchError.check("redis-server's INFO stats has no total_commands_processed")
        }
        return count
    }

    /// The redis-server children (one).
    private var redisPids: [Int32] {
        RunningChildren.shared.current.filter { $0.value == "redis-server" }.map(\.key)
    }

    /// Where `target` is served.
    func url(_ target: HBSTarget) -> String {
        switch target {
        case .helloGet: "http://\(Loopback.host):\(helloPort)/"
        case .helloPost: "http://\(Loopback.host):\(helloPort)/v1/heartbeat"
        case .helloTLS: "https://\(Loopback.host):\(helloTLSPort)/v1/heartbeat"
        default: hbs(target).map { "\($0.agentURL)/v1/heartbeat" } ?? ""
        }
    }

    /// The fledge-hbs behind `target`, nil for the hello servers.
    func hbs(_ target: HBSTarget) -> HBSProcess? {
        switch target {
        case .helloGet, .helloPost, .helloTLS: nil
        case .embedded, .embeddedRollout: embedded
        case .embeddedAnonymous: anonymous
        case .redis, .redisRollout, .redisPair: onRedis
        case .embeddedTLS: overTLS
        }
    }

    /// Every fledge-hbs serving `target`: two for the pair, else `hbs(target)`.
    func instances(_ target: HBSTarget) -> [HBSProcess] {
        target == .redisPair ? [onRedis, onRedisToo] : hbs(target).map { [$0] } ?? []
    }

    /// Enrols hosts `names` at `hbs` (with its fleet token, over TLS when it serves TLS), a few
    /// at a time, each lane over one kept-alive connection: each host's secret, in the order of
    /// `names`.
    static func enrol(_ names: [String], at hbs: HBSProcess, ca: String) async throws -> [String] {
        guard let token = hbs.fleetToken else { throw BenchError.check("\(hbs.agentURL) has no fleet token to enrol with") }
        let lanes = 8
        return try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    try await Blocking.run {
                        let connection = CurlConnectionCache()  // this lane's thread only
                        var secrets: [(Int, String)] = []
                        for index in stride(from: lane, to: names.count, by: lanes) {
                            let body = Array(try JSONEncoder().encode(EnrolRequest(hostname: names[index])))
                            let answer = try Curl.postJSON(
                                hbs.agentURL + "/v1/enrol", body: body, headers: ["Authorization: Bearer \(token)"], timeoutSeconds: 10,
                                caFile: hbs.scheme == "https" ? ca : nil, connections: connection)
                            guard answer.status == 201, let reply = try? JSONDecoder().decode(EnrolReply.self, from: Data(answer.body)) else {
                                throw BenchError.check("enrolling \(names[index]) at \(hbs.agentURL): HTTP \(answer.status) \(String(decoding: answer.body.prefix(200), as: UTF8.self))")
                            }
                            secrets.append((index, reply.secret))
                        }
                        return secrets
                    }
                }
            }
            var secrets = Array(repeating: "", count: names.count)
            for try await lane in group { for (index, secret) in lane { secrets[index] = secret } }
            return secrets
        }
    }

    /// One fledge-hbs's `/metrics` (admin listener, over TLS when it serves TLS): every sample
    /// by its full name, labels included (`hbs_agents`, `hbs_rollout_hosts{rollout="r1",phase="admitted"}`).
    func metrics(of hbs: HBSProcess) async throws -> [String: Double] {
        let body: [UInt8]
        if hbs.scheme == "https" {
            let url = "https://\(Loopback.host):\(hbs.adminPort)/metrics"
            let ca = self.ca
            body = try await Blocking.run { try Curl.get(url, caFile: ca) }
        } else {
            let response = try await LoopbackHTTP.request(port: hbs.adminPort, target: "/metrics")
            guard response.status == 200 else { throw BenchError.check("fledge-hbs /metrics answered \(response.status)") }
            body = response.body
        }
        var samples: [String: Double] = [:]
        for line in String(decoding: body, as: UTF8.self).split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
