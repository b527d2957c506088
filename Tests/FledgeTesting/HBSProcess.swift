import Foundation

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

    /// What agents are configured with: `http://agentHost:agentPort`.
    public var agentURL: String { "http://\(agentHost):\(agentPort)" }

    private init(child: ChildProcess, agentHost: String, agentPort: Int, adminPort: Int) {
        self.child = child
        self.agentHost = agentHost
        self.agentPort = agentPort
        self.adminPort = adminPort
    }

    /// Starts it and returns once both listeners accept connections. `agentHost`: the address
    /// agents beat to (the admin API stays on 127.0.0.1).
    public static func start(data: String, extra: [String] = [], agentHost: String = Loopback.host) async throws -> HBSProcess {
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
            throw FledgeTestingError("fledge-hbs did not listen for agents on \(agentHost):\(agentPort): \(child.stderr.suffix(800))")
        }
        return HBSProcess(child: child, agentHost: agentHost, agentPort: agentPort, adminPort: adminPort)
    }

    /// Kills it (SIGKILL) and returns once it is gone; works in `defer`.
    public func kill() { _ = child.kill() }

    /// One admin request with a JSON body (or none); the answer's status and JSON.
    public func admin(
        _ method: String, _ target: String, json: String? = nil, headers: [String: String] = [:], from source: String? = nil
    ) async throws -> (status: Int, body: Any?) {
        try await Self.call(port: adminPort, method, target, json: json, headers: headers, from: source)
    }

    /// One heartbeat; the answer's status and JSON.
    public func beat(_ json: String, headers: [String: String] = [:]) async throws -> (status: Int, body: Any?) {
        try await Self.call(host: agentHost, port: agentPort, "POST", "/v1/heartbeat", json: json, headers: headers, from: nil)
    }

    /// The agents as `GET /v1/agents` shows them (host, version, state, labels, ...).
    public func agents() async throws -> [[String: Any]] {
        let (status, body) = try await admin("GET", "/v1/agents")
        guard status == 200, let agents = body as? [[String: Any]] else {
            throw FledgeTestingError("GET /v1/agents answered \(status): \(String(describing: body))")
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
