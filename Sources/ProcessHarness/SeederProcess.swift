/// `fledge-seeder serve` as a real process on a free loopback port: the origin that downloads
/// and mirrors are tested against, so they meet real sockets, rate caps and process deaths. It
/// can also run inside a network namespace on that namespace's address (a namespaced fleet's
/// origin, whose link the kernel shapes).
public final class SeederProcess: Sendable {
    public let child: ChildProcess
    /// The address it listens on: 127.0.0.1, or its namespace's.
    public let host: String
    public let port: Int
    public var baseURL: String { "http://\(host):\(port)" }

    private init(child: ChildProcess, host: String = Loopback.host, port: Int) {
        self.child = child
        self.host = host
        self.port = port
    }

    /// Starts it serving `root` (at most `rate` bytes per second, if given) and returns once it
    /// accepts connections.
    public static func start(root: String, rate: Int64? = nil, extra: [String] = []) async throws -> SeederProcess {
        let (child, port) = try await LoopbackServer.start("fledge-seeder serve") { port in
            var arguments = ["serve", "--root", root, "--listen", "\(Loopback.host):\(port)", "--threads", "1"]
            if let rate { arguments += ["--rate", "\(rate)"] }
            return try ChildProcess("fledge-seeder", arguments + extra)
        }
        return SeederProcess(child: child, port: port)
    }

    /// Starts it inside network namespace `namespace` (`ip netns exec`), serving `root` on
    /// `host`:`port` (an address of that namespace, reachable from this one), and returns once
    /// it accepts connections there. The namespace is its own, so the port is free.
    public static func start(
        root: String, rate: Int64? = nil, extra: [String] = [], namespace: String, host: String, port: Int
    ) async throws -> SeederProcess {
        var arguments = ["serve", "--root", root, "--listen", "\(host):\(port)", "--threads", "1"]
        if let rate { arguments += ["--rate", "\(rate)"] }
        let child = try ChildProcess.inNamespace(namespace, "fledge-seeder", arguments + extra)
        await ChildProcess.waitFor(seconds: 10) { !child.isRunning || Loopback.accepts(port: port, host: host) }
        guard child.isRunning, Loopback.accepts(port: port, host: host) else {
            let exit = await child.stop(grace: .seconds(2))
            throw HarnessError(
                "fledge-seeder serve in namespace \(namespace) did not listen on \(host):\(port) (\(exit)): \(child.stderr.suffix(800))")
        }
        return SeederProcess(child: child, host: host, port: port)
    }

    /// Kills it (SIGKILL) and returns once it is gone; works in `defer`.
    public func kill() { child.kill() }
}
