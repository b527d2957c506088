import FledgeTesting
import Foundation

/// The servers of `fledge-bench hbs`, each a child process on free 127.0.0.1 ports: the
/// hello-world reference (this executable's hidden `hello-server`), fledge-hbs on its embedded
/// store, and fledge-hbs on Redis with a redis-server of its own. `stop()` ends them all; a
/// signal's teardown finds them in `RunningChildren`.
final class HBSServers: Sendable {
    let hello: ChildProcess
    let helloPort: Int
    let embedded: HBSProcess
    let redis: RedisProcess
    let onRedis: HBSProcess

    private init(hello: ChildProcess, helloPort: Int, embedded: HBSProcess, redis: RedisProcess, onRedis: HBSProcess) {
        self.hello = hello
        self.helloPort = helloPort
        self.embedded = embedded
        self.redis = redis
        self.onRedis = onRedis
    }

    /// Starts them all, with their data in `directory`; whatever started is stopped again if
    /// a later one fails.
    static func start(in directory: TemporaryDirectory) async throws -> HBSServers {
        try ReleaseProducts.use(["fledge-hbs"])
        let own = try ReleaseProducts.ownExecutable()
        let (hello, helloPort) = try await LoopbackServer.start("fledge-bench hello-server") { port in
            try ChildProcess(own, ["hello-server", "--listen", "\(Loopback.host):\(port)"])
        }
        var embedded: HBSProcess?, redis: RedisProcess?
        do {
            embedded = try await HBSProcess.start(data: try directory.makeDirectory("hbs-embedded").string)
            redis = try await RedisProcess.start(directory: try directory.makeDirectory("redis").string)
            let onRedis = try await HBSProcess.start(
                data: try directory.makeDirectory("hbs-redis").string, extra: ["--redis", redis!.url])
            return HBSServers(hello: hello, helloPort: helloPort, embedded: embedded!, redis: redis!, onRedis: onRedis)
        } catch {
            embedded?.kill()
            redis?.kill()
            await hello.stop(grace: .seconds(2))
            throw error
        }
    }

    /// Stops every server: SIGTERM (SIGKILL after a grace period) for fledge-hbs and the hello
    /// server; redis-server's data is thrown away anyway, so it is killed.
    func stop() async {
        await onRedis.child.stop(grace: .seconds(3))
        await embedded.child.stop(grace: .seconds(3))
        await hello.stop(grace: .seconds(3))
        redis.kill()
    }

    /// User + system CPU seconds so far of the processes serving `target`: the server, and
    /// redis-server as well for fledge-hbs on Redis.
    func cpuSeconds(_ target: HBSTarget) -> Double {
        switch target {
        case .helloGet, .helloPost: ProcFS.seconds(of: hello.pid)
        case .embedded, .embeddedRollout: ProcFS.seconds(of: embedded.child.pid)
        case .redis: ProcFS.seconds(of: onRedis.child.pid) + redisPids.map(ProcFS.seconds(of:)).reduce(0, +)
        }
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
        case .embedded, .embeddedRollout: "http://\(Loopback.host):\(embedded.agentPort)/v1/heartbeat"
        case .redis: "http://\(Loopback.host):\(onRedis.agentPort)/v1/heartbeat"
        }
    }

    /// The fledge-hbs behind `target`, nil for the hello server.
    func hbs(_ target: HBSTarget) -> HBSProcess? {
        switch target {
        case .helloGet, .helloPost: nil
        case .embedded, .embeddedRollout: embedded
        case .redis: onRedis
        }
    }

    /// One fledge-hbs's `/metrics` (admin listener): every sample by its full name, labels
    /// included (`hbs_agents`, `hbs_rollout_hosts{rollout="r1",phase="admitted"}`).
    static func metrics(of hbs: HBSProcess) async throws -> [String: Double] {
        let response = try await LoopbackHTTP.request(port: hbs.adminPort, target: "/metrics")
        guard response.status == 200 else { throw BenchError.check("fledge-hbs /metrics answered \(response.status)") }
        var samples: [String: Double] = [:]
        for line in String(decoding: response.body, as: UTF8.self).split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
