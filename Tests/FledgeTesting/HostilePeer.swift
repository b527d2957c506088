import Foundation

/// A peer that misbehaves on purpose, as a real process of its own: `Tests/Fixtures/hostile-peer.py`
/// run by python3 on a free loopback port. It beats to HBS as an agent host would, so HBS lists
/// it as a source of the release; it publishes a piece map claiming every piece; then it serves
/// the release badly, the way its `Mode` says. It exists so tests can prove that one bad peer
/// cannot stall the hosts that ask it, against the real agent's sockets and timers rather than a
/// mock inside the test process (which would share the agent's event loop and never really hang).
public final class HostilePeer: Sendable {
    /// How it serves release files (`--mode` of the script). Every mode serves a correct piece
    /// map; the manifest is proxied from the origin except in `endless200`.
    public enum Mode: String, CaseIterable, Sendable, CustomStringConvertible {
        /// 200, no length, random bytes forever.
        case endless200 = "endless-200"
        /// Correct 206 and bytes, at about 1.3 KB/s: above a 1 KiB/s low-speed limit.
        case trickle206 = "trickle-206"
        /// 206 with 64 KiB more than the range asked for.
        case long206 = "long-206"
        /// 206 for the first half of the range only.
        case short206 = "short-206"
        /// Correct 206 headers, half the bytes, then the socket closed.
        case closeMidPiece = "close-mid-piece"
        /// The map claims every piece, every piece request gets 404.
        case lyingMap = "lying-map"
        /// Correct 206 headers and length, random bytes.
        case corrupt

        public var description: String { rawValue }
    }

    /// What it tells HBS it holds (`--claim`): verified pieces while "downloading" once it has
    /// an order (a swarm member), or the release whole from its first beat (whole-file relay).
    public enum Claim: String, Sendable {
        case pieces, whole
    }

    public let child: ChildProcess
    public let port: Int
    /// The hostname it beats with.
    public let hostname: String
    public let mode: Mode
    /// The release it claims.
    public let name: String
    /// The base URL HBS hands out for it.
    public var url: String { "http://\(Loopback.host):\(port)" }

    private init(child: ChildProcess, port: Int, hostname: String, mode: Mode, name: String) {
        self.child = child
        self.port = port
        self.hostname = hostname
        self.mode = mode
        self.name = name
    }

    /// The script, found from this file's place in the repository.
    public static var script: String {
        Fixtures.path("hostile-peer.py")
    }

    /// Starts it beating to the HBS agent listener on `hbsPort` as `hostname` (labels `labels`,
    /// running `fromVersion`), claiming `name` `version` of `pieces` pieces (the manifest's
    /// total: agents refuse a map of another length), taking right bytes and the manifest from
    /// `origin` when given, enrolling with `fleetTokenFile`'s token when given. Returns once it accepts connections; it beats from then on.
    public static func start(
        hbsPort: Int, hostname: String, mode: Mode, pieces: Int, labels: [String: String] = [:], origin: String? = nil,
        claim: Claim = .pieces, name: String = "fledge-agent", version: String = "1.1.0", fromVersion: String = "1.0.0",
        beatSeconds: Double = 0.5, fleetTokenFile: String? = nil
    ) async throws -> HostilePeer {
        guard FileManager.default.fileExists(atPath: script) else {
            throw HarnessError("\(script) not found: the hostile peer lives in Tests/Fixtures of this repository")
        }
        let python = try Binaries.tool("python3")
        let labelText = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let (child, port) = try await LoopbackServer.start("hostile-peer.py (\(mode))") { port in
            var arguments = [
                script, "--hbs", "http://\(Loopback.host):\(hbsPort)", "--hostname", hostname,
                "--listen", "\(Loopback.host):\(port)", "--mode", mode.rawValue, "--name", name, "--version", version,
                "--from-version", fromVersion, "--pieces", "\(pieces)", "--labels", labelText, "--claim", claim.rawValue,
                "--beat-seconds", "\(beatSeconds)",
            ]
            if let origin { arguments += ["--origin", origin] }
            if let fleetTokenFile { arguments += ["--fleet-token-file", fleetTokenFile] }
            return try ChildProcess(python, arguments)
        }
        return HostilePeer(child: child, port: port, hostname: hostname, mode: mode, name: name)
    }

    /// What it has written: a line per request (`MODE METHOD PATH RANGE STATUS`), per new
    /// order (`order ...`), per HBS error.
    public var log: String { child.stderr }

    /// The requests it answered for the release's files or its piece map: proof that an
    /// agent asked it.
    public var releaseRequests: [Substring] {
        log.split(separator: "\n").filter { line in
            line.hasPrefix(mode.rawValue + " ") && (line.contains(" /_fledge/pieces/") || line.contains(" /\(name)/"))
        }
    }

    /// SIGTERM, SIGKILL after a moment; returns once it has ended.
    public func stop() async { await child.stop(grace: .seconds(2)) }
}
