import Foundation

/// Slowloris as a real process (`Tests/Fixtures/slow-clients.py`): connections whose requests
/// trickle in a byte at a time and never end.
public final class SlowClients: Sendable {
    public let child: ChildProcess

    /// What it saw once it ended: how many of its connections the server closed, and how long
    /// the longest lasted.
    public struct Report: Decodable, Sendable {
        public let opened: Int
        public let closed: Int
        public let longestSeconds: Double
    }

    private init(child: ChildProcess) { self.child = child }

    public static var script: String {
        Fixtures.path("slow-clients.py")
    }

    /// Opens `count` connections to `host:port`, each sent one byte every `interval` seconds
    /// for at most `seconds` (it ends earlier once the server closed them all).
    public static func start(host: String = Loopback.host, port: Int, count: Int = 64, interval: Double = 1, seconds: Double) throws -> SlowClients {
        let child = try ChildProcess(try Binaries.tool("python3"), [
            script, "--connect", "\(host):\(port)", "--count", "\(count)", "--interval", "\(interval)", "--seconds", "\(seconds)",
        ])
        return SlowClients(child: child)
    }

    /// Waits for it to end and reads its report.
    public func report() async throws -> Report {
        _ = await child.wait()
        guard let line = child.stdout.split(separator: "\n").last,
              let report = try? JSONDecoder().decode(Report.self, from: Data(line.utf8)) else {
            throw HarnessError("slow-clients.py printed no report: \(child.stdout.suffix(300)) \(child.stderr.suffix(600))")
        }
        return report
    }
}
