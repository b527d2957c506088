import Foundation
import Synchronization

/// `fledge-hbs` as a real process on two free loopback ports (agents, admin) with its data in
/// a directory the test owns, so restarts and kill -9 are tested for real. The agents' listener
/// may be on another address of this machine instead (a namespaced fleet's bridge, which agents
/// in their own network namespaces reach and 127.0.0.1 is not).
public final class HBSProcess: Sendable {
    public let child: ChildProcess
    /// The address the agents' listener is on: 127.0.0.1 unless `start` was given another.
    public let agentHost: String
    public let agentPort: Int
    public let adminPort: Int
    /// The file with the fleet's enrolment token it was started with (agents' `fleetTokenFile`);
    /// nil when started with `--anonymous-beats`.
    public let fleetTokenFile: String?
    /// Each host's secret, once `beat` enrolled it (shared by instances on one Redis).
    public let secrets: HostSecrets

    /// `https` when started with `--tls-certificate`, else `http`.
    public let scheme: String

    /// What agents are configured with: `SCHEME://agentHost:agentPort`.
    public var agentURL: String { "\(scheme)://\(agentHost):\(agentPort)" }

    private init(
        child: ChildProcess, agentHost: String, agentPort: Int, adminPort: Int, fleetTokenFile: String?, secrets: HostSecrets, scheme: String
    ) {
        self.secrets = secrets
        self.scheme = scheme
        self.child = child
        self.agentHost = agentHost
        self.agentPort = agentPort
        self.adminPort = adminPort
        self.fleetTokenFile = fleetTokenFile
    }

    /// Starts it and returns once both listeners accept connections. `agentHost`: the address
    /// agents beat to (the admin API stays on 127.0.0.1). Unless `extra` says otherwise it gets
    /// a fresh fleet token in `DATA/fleet-token` (`fleetTokenFile`). Instances sharing one
    /// Redis share their token file and `secrets`.
    public static func start(
        data: String, extra: [String] = [], agentHost: String = Loopback.host, secrets: HostSecrets = HostSecrets()
    ) async throws -> HBSProcess {
        var tokenFile = extra.firstIndex(of: "--fleet-token-file").map { extra[$0 + 1] }
        var extra = extra
        if !extra.contains("--anonymous-beats"), tokenFile == nil {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let path = data + "/fleet-token"
            if !FileManager.default.fileExists(atPath: path) {
                let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
                try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: path))
            }
            tokenFile = path
            extra += ["--fleet-token-file", path]
        }
        var agentPort = 0
        let (child, adminPort) = try await LoopbackServer.start("fledge-hbs") { adminPort in
            agentPort = try Loopback.freePort(host: agentHost)
            return try ChildProcess("fledge-hbs", [
                "--data", data, "--agent-listen", "\(agentHost):\(agentPort)",
                "--admin-listen", "\(Loopback.host):\(adminPort)",
            ] + extra)
        }
        guard await ChildProcess.waitFor(seconds: 10, { Loopback.accepts(port: agentPort, host: agentHost) }) else {
            _ = child.kill()
            throw HarnessError("fledge-hbs did not listen for agents on \(agentHost):\(agentPort): \(child.stderr.suffix(800))")
        }
        return HBSProcess(child: child, agentHost: agentHost, agentPort: agentPort, adminPort: adminPort, fleetTokenFile: tokenFile, secrets: secrets,
            scheme: extra.contains("--tls-certificate") ? "https" : "http")
    }

    /// Kills it (SIGKILL) and returns once it is gone; works in `defer`.
    public func kill() { _ = child.kill() }

    /// One admin request with a JSON body (or none); the answer's status and JSON.
    public func admin(
        _ method: String, _ target: String, json: String? = nil, headers: [String: String] = [:], from source: String? = nil
    ) async throws -> (status: Int, body: Any?) {
        try await Self.call(port: adminPort, method, target, json: json, headers: headers, from: source)
    }

    /// The fleet's enrolment token (from `fleetTokenFile`).
    public var fleetToken: String? {
        fleetTokenFile.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// One heartbeat as the host it names, as an agent beats: enrolled with the fleet token
    /// first (once), its credential attached. Anonymous when HBS has no token of ours; `as`
    /// speaks for another host than the JSON names. The answer's status and JSON.
    public func beat(_ json: String, as speaker: String? = nil) async throws -> (status: Int, body: Any?) {
        let host = speaker ?? (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["hostname"] as? String
        guard fleetTokenFile != nil, let host else { return try await rawBeat(json) }
        let secret = try await secret(of: host)
        return try await rawBeat(json, headers: ["Fledge-Host": host, "Authorization": "Bearer \(secret)"])
    }

    /// One heartbeat with exactly these headers (a forger's, or none).
    public func rawBeat(_ json: String, headers: [String: String] = [:]) async throws -> (status: Int, body: Any?) {
        try await Self.call(host: agentHost, port: agentPort, "POST", "/v1/heartbeat", json: json, headers: headers, from: nil)
    }

    /// `host`'s secret: the one it enrolled with here, or a new enrolment.
    public func secret(of host: String) async throws -> String {
        if let known = secrets.book.withLock({ $0[host] }) { return known }
        let (status, body) = try await enrol(host)
        guard status == 201, let secret = (body as? [String: Any])?["secret"] as? String else {
            throw HarnessError("enrolling \(host) answered \(status): \(String(describing: body))")
        }
        secrets.book.withLock { $0[host] = secret }
        return secret
    }

    /// `POST /v1/enrol` for `host` with `token` (default: the fleet's); the answer as it came.
    public func enrol(_ host: String, token: String? = nil) async throws -> (status: Int, body: Any?) {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: ["hostname": host]), as: UTF8.self)
        let bearer = token ?? fleetToken
        return try await Self.call(
            host: agentHost, port: agentPort, "POST", "/v1/enrol", json: json,
            headers: bearer.map { ["Authorization": "Bearer \($0)"] } ?? [:], from: nil)
    }

    /// The agents as `GET /v1/agents` shows them (host, version, state, labels, ...).
    public func agents() async throws -> [[String: Any]] {
        let (status, body) = try await admin("GET", "/v1/agents")
        guard status == 200, let agents = body as? [[String: Any]] else {
            throw HarnessError("GET /v1/agents answered \(status): \(String(describing: body))")
        }
        return agents
    }

    /// One agent as `GET /v1/agents` shows it, nil if HBS has not heard from it.
    public func agent(_ host: String) async throws -> [String: Any]? {
        try await agents().first { $0["host"] as? String == host }
    }

    /// `GET /v1/rollouts/ID` every 100 ms until its phase is `wanted`, at most `seconds`;
    /// returns the last summary either way.
    public func waitForRollout(_ id: String, phase wanted: String, seconds: Int = 90) async throws -> [String: Any]? {
        var summary: [String: Any]?
        for _ in 0..<(seconds * 10) {
            summary = try await admin("GET", "/v1/rollouts/\(id)").body as? [String: Any]
            if summary?["phase"] as? String == wanted { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return summary
    }

    static func call(
        host: String = Loopback.host, port: Int, _ method: String, _ target: String, json: String?, headers: [String: String],
        from source: String?
    ) async throws -> (status: Int, body: Any?) {
        var headers = headers
        if json != nil { headers["Content-Type"] = "application/json" }
        let response = try await LoopbackHTTP.request(
            port: port, host: host, method: method, target: target, headers: headers, body: json.map { Array($0.utf8) }, from: source)
        return (response.status, try? JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed]))
    }
}

/// Hosts' secrets as test hosts enrolled them, by hostname.
public final class HostSecrets: Sendable {
    let book = Mutex<[String: String]>([:])

    public init() {}
}
