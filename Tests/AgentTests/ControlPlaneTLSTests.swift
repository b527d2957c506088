import Foundation
import FledgeTesting
import Testing

/// HBS over TLS (swift-nio-ssl) with certificates from a real `openssl`: an agent pinning the
/// right CA enrols and beats; one pinning another CA is refused by its own libcurl and never
/// reaches HBS; plain http to the TLS port gets nothing.
@Suite struct ControlPlaneTLSTests {
    static func agentConfig(in directory: TemporaryDirectory, host: String, hbs: HBSProcess, ca: String, key: String) throws -> String {
        let json: [String: Any] = [
            "hbs": [hbs.agentURL], "hostname": host, "data": directory.string + "/\(host)", "trustedKeys": [key],
            "heartbeatSeconds": 2, "fleetTokenFile": hbs.fleetTokenFile!, "hbsCA": ca,
        ]
        let path = directory.string + "/\(host).json"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func anAgentTrustsHBSOnlyThroughItsCA() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let tls = try await TestCertificates.make(in: directory.string)
        try await SeederCLI.keygen(into: directory.string + "/keys")
        let hbs = try await HBSProcess.start(
            data: directory.string + "/hbs", extra: ["--tls-certificate", tls.certificate, "--tls-key", tls.key])
        defer { hbs.kill() }
        #expect(hbs.agentURL.hasPrefix("https://"))
        let key = directory.string + "/keys/release.pub"
        let trusting = try ChildProcess(Binaries.path("fledge-agent"), ["--config", try Self.agentConfig(in: directory, host: "trusting", hbs: hbs, ca: tls.ca, key: key)])
        defer { _ = trusting.kill() }
        let misled = try ChildProcess(Binaries.path("fledge-agent"), ["--config", try Self.agentConfig(in: directory, host: "misled", hbs: hbs, ca: tls.wrongCA, key: key)])
        defer { _ = misled.kill() }

        let curl = try Binaries.tool("curl")
        let admin = "https://127.0.0.1:\(hbs.adminPort)/v1/agents"
        var hosts: [String] = []
        for _ in 0..<100 where !hosts.contains("trusting") {
            let out: String
            do { (out, _) = try await ChildProcess.run(curl, ["-s", "--noproxy", "*", "--cacert", tls.ca, admin]) } catch {
                Issue.record("\(error); fledge-hbs running: \(hbs.child.isRunning), its log: \(hbs.child.stderr.suffix(2000))")
                return
            }
            hosts = ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]] ?? []).compactMap { $0["host"] as? String }
            if !hosts.contains("trusting") { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(hosts.contains("trusting"), "enrolled and beat over TLS: \(trusting.stderr.suffix(1500))")
        #expect(FileManager.default.fileExists(atPath: directory.string + "/trusting/identity.json"))
        try await Task.sleep(for: .seconds(1))
        #expect(!hosts.contains("misled"))
        #expect(misled.stderr.contains("SSL certificate problem") || misled.stderr.contains("certificate"), "\(misled.stderr.suffix(1500))")
        #expect(!FileManager.default.fileExists(atPath: directory.string + "/misled/identity.json"), "it never enrolled")

        // curl agrees: the wrong CA is refused (exit 60), plain http gets no answer.
        let wrong = try ChildProcess(curl, ["-s", "--noproxy", "*", "--cacert", tls.wrongCA, admin])
        #expect(await wrong.wait() == .exited(60))
        let plain = try ChildProcess(curl, ["-s", "--noproxy", "*", "--max-time", "5", "http://127.0.0.1:\(hbs.adminPort)/v1/agents"])
        let plainExit = await plain.wait()
        #expect(plainExit != .exited(0), "plain http to the TLS port is no API: \(plainExit)")
    }
}
