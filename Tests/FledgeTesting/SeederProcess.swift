/// `fledge-seeder serve` as a real process on a free loopback port: the origin that downloads
/// and mirrors are tested against, so they meet real sockets, rate caps and process deaths.
public final class SeederProcess: Sendable {
    public let child: ChildProcess
    public let port: Int
    public var baseURL: String { "http://\(Loopback.host):\(port)" }

    private init(child: ChildProcess, port: Int) {
        self.child = child
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

    /// Kills it (SIGKILL) and returns once it is gone; works in `defer`.
    public func kill() { child.kill() }
}
