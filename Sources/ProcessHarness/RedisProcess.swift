import Foundation

/// A real `redis-server` on a free loopback port, its append-only file in a directory the test
/// owns, so a test can kill it mid-rollout and start it again on the same port with its data.
public final class RedisProcess: Sendable {
    public let port: Int
    public let directory: String
    private let current: ChildBox

    public var url: String { "redis://\(Loopback.host):\(port)" }

    private init(child: ChildProcess, port: Int, directory: String) {
        self.current = ChildBox(child)
        self.port = port
        self.directory = directory
    }

    public static func start(directory: String) async throws -> RedisProcess {
        let (child, port) = try await LoopbackServer.start("redis-server") { port in
            try ChildProcess(try Binaries.tool("redis-server"), arguments(port: port, directory: directory))
        }
        return RedisProcess(child: child, port: port, directory: directory)
    }

    static func arguments(port: Int, directory: String) -> [String] {
        ["--port", "\(port)", "--bind", Loopback.host, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
         "--dir", directory, "--protected-mode", "no", "--daemonize", "no"]
    }

    /// SIGKILL, as a crash would.
    public func kill() { _ = current.child.kill() }

    /// SIGSTOP: the server hangs with its sockets open (connections and commands are taken
    /// by the kernel and never answered), as a stuck or swapping Redis would.
    public func freeze() { current.child.signal(SIGSTOP) }

    /// SIGCONT after `freeze()`.
    public func thaw() { current.child.signal(SIGCONT) }

    /// Starts it again on the same port with the same data.
    public func restart() async throws {
        let child = try ChildProcess(try Binaries.tool("redis-server"), Self.arguments(port: port, directory: directory))
        guard await ChildProcess.waitFor(seconds: 10, { Loopback.accepts(port: port) }) else {
            _ = child.kill()
            throw HarnessError("redis-server did not come back on \(port): \(child.stderr.suffix(500))")
        }
        current.child = child
    }

    /// Runs `redis-cli` against it and returns its output, trimmed.
    public func cli(_ arguments: [String]) async throws -> String {
        let (stdout, _) = try await ChildProcess.run(try Binaries.tool("redis-cli"), ["-h", Loopback.host, "-p", "\(port)"] + arguments)
        return stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The running redis-server child, replaced on restart.
private final class ChildBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: ChildProcess
    init(_ child: ChildProcess) { value = child }
    var child: ChildProcess {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
