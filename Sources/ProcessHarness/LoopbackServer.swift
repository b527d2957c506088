import Foundation

/// Starts a server child on a free loopback port and returns once it accepts connections.
/// Picking a free port and binding it are two steps, and another process may take the port in
/// between; a child that ends (or never listens) gets another port, a few times over.
public enum LoopbackServer {
    /// Calls `launch` with a free port until the child it starts listens on that port, at most
    /// `attempts` times, each given `timeout`. `what` names the server in the error.
    public static func start(
        _ what: String, attempts: Int = 5, timeout: Duration = .seconds(10), _ launch: (Int) throws -> ChildProcess
    ) async throws -> (child: ChildProcess, port: Int) {
        var lastError = ""
        for _ in 0..<attempts {
            let port = try Loopback.freePort()
            let child = try launch(port)
            await ChildProcess.waitFor(seconds: timeout.seconds) { !child.isRunning || Loopback.accepts(port: port) }
            if child.isRunning && Loopback.accepts(port: port) { return (child, port) }
            let exit = await child.stop(grace: .seconds(2))
            lastError = "\(exit): \(child.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(800))"
        }
        throw HarnessError("\(what) did not listen on \(Loopback.host) after \(attempts) tries; last: \(lastError)")
    }
}
