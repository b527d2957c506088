import Foundation
import ProcessHarness

/// One `fledge-agent` as a real process, holding a verified release to serve to peers: a fresh
/// key pair (`fledge-seeder keygen`), a random file published as fledge-agent 9.9.9
/// (`fledge-seeder publish`) into an origin whose release directory is copied into the agent's
/// store, a fledge-hbs to beat to, and the agent on free 127.0.0.1 ports (peer server with an
/// upload cap, /metrics).
final class AgentUnderTest: Sendable {
    static let releaseName = "fledge-agent"
    static let releaseVersion = "9.9.9"
    /// The released file's name in the release (the published binary's name).
    static let fileName = "fledge-agent"

    let agent: ChildProcess
    let hbs: HBSProcess
    let peerPort: Int
    let metricsPort: Int

    private init(agent: ChildProcess, hbs: HBSProcess, peerPort: Int, metricsPort: Int) {
        self.agent = agent
        self.hbs = hbs
        self.peerPort = peerPort
        self.metricsPort = metricsPort
    }

    /// The released file's URL on the agent's peer server.
    var fileURL: String { "http://\(Loopback.host):\(peerPort)/\(Self.releaseName)/\(Self.releaseVersion)/\(Self.fileName)" }

    /// Publishes the release and starts fledge-hbs and the agent; everything lives in
    /// `directory`. Returns the agent once both its listeners accept connections. `payload`
    /// is the released file, already written.
    static func start(in directory: TemporaryDirectory, payload: String, rate: Int64) async throws -> AgentUnderTest {
        let keys = try directory.makeDirectory("keys").string
        let (keygen, _) = try await ChildProcess.run("fledge-seeder", ["keygen", "--out", keys])
        guard let summary = try? JSONSerialization.jsonObject(with: Data(keygen.utf8)) as? [String: Any],
              let publicKey = summary["publicKey"] as? String, let privateKey = summary["privateKey"] as? String
        else { throw BenchError.check("fledge-seeder keygen printed '\(keygen)'") }
        let origin = directory.appending("origin").string
        _ = try await ChildProcess.run("fledge-seeder", [
            "publish", "--root", origin, "--name", releaseName, "--version", releaseVersion,
            "--binary", payload, "--key", privateKey])
        let data = directory.appending("agent-data").string
        let held = "\(data)/store/\(releaseName)"
        try FileManager.default.createDirectory(atPath: held, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(origin)/\(releaseName)/\(releaseVersion)", toPath: "\(held)/\(releaseVersion)")

        let hbs = try await HBSProcess.start(data: try directory.makeDirectory("hbs").string)
        do {
            var metricsPort = 0
            let config = directory.appending("agent.json").string
            let (agent, peerPort) = try await LoopbackServer.start("fledge-agent") { peerPort in
                metricsPort = try Loopback.freePort()
                var json: [String: Any] = [
                    "hbs": [hbs.agentURL], "data": data, "trustedKeys": [publicKey],
                    "peerListen": "\(Loopback.host):\(peerPort)", "metricsListen": "\(Loopback.host):\(metricsPort)",
                    "peerUploadBytesPerSecond": rate, "heartbeatSeconds": 60,
                ]
                if let token = hbs.fleetTokenFile { json["fleetTokenFile"] = token }
                try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: config))
                return try ChildProcess("fledge-agent", ["--config", config])
            }
            guard await ChildProcess.waitFor(seconds: 10, { Loopback.accepts(port: metricsPort) }) else {
                _ = agent.kill()
                throw BenchError.check("fledge-agent did not serve /metrics on \(metricsPort): \(agent.stderr.suffix(800))")
            }
            return AgentUnderTest(agent: agent, hbs: hbs, peerPort: peerPort, metricsPort: metricsPort)
        } catch {
            hbs.kill()
            throw error
        }
    }

    /// The agent's own `/metrics` sample `name` (unlabelled), nil if absent.
    func metric(_ name: String) async throws -> Double? {
        let response = try await LoopbackHTTP.request(port: metricsPort, target: "/metrics")
        guard response.status == 200 else { throw BenchError.check("fledge-agent /metrics answered \(response.status)") }
        let line = String(decoding: response.body, as: UTF8.self).split(whereSeparator: \.isNewline).first { $0.hasPrefix(name + " ") }
        return line.flatMap { Double($0.dropFirst(name.count + 1)) }
    }

    /// SIGTERM to the agent (SIGKILL after a grace period), then fledge-hbs is killed.
    func stop() async {
        await agent.stop(grace: .seconds(5))
        hbs.kill()
    }
}
