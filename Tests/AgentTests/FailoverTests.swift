import Foundation
import FledgeTesting
import Testing

/// Two real fledge-hbs on one real redis-server, real agents that know both: one instance is
/// killed (SIGKILL) mid-rollout, and the rollout goes on through the other. No host is lost, none
/// admitted twice, the concurrency limit holds throughout, and every host ends on the target.
@Suite(.serialized) struct FailoverTests {
    typealias Fleet = UpgradeTests.Fleet

    @Test func killingOneOfTwoInstancesMidRolloutLosesNoHost() async throws {
        let hosts = ["host-a", "host-b", "host-c", "host-d"]
        let fleet = try await Fleet(hosts: hosts)
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let redis = try await RedisProcess.start(directory: fleet.directory.string)
        defer { redis.kill() }
        let one = try await HBSProcess.start(data: fleet.directory.string + "/one", extra: ["--redis", redis.url, "--fast-beat", "0.5"])
        defer { one.kill() }
        let two = try await HBSProcess.start(
            data: fleet.directory.string + "/two",
            extra: ["--redis", redis.url, "--fast-beat", "0.5", "--fleet-token-file", one.fleetTokenFile!], secrets: one.secrets)
        defer { two.kill() }
        let seeder = try await SeederProcess.start(root: fleet.origin)
        defer { seeder.kill() }
        var supervisors: [ChildProcess] = []
        defer { supervisors.forEach(UpgradeTests.stop) }
        for host in hosts {
            // Both instances, the one to be killed first; slow enough downloads that it dies mid-rollout.
            let config = try fleet.config(hbs: one, host: host, extra: [
                "hbs": [one.agentURL, two.agentURL], "downloadBytesPerSecond": 8_000_000,
            ])
            supervisors.append(try UpgradeTests.supervise(fleet, config: config, host: host))
        }
        for host in hosts {
            for _ in 0..<150 where try await two.agent(host)?["version"] as? String != "1.0.0" { try await Task.sleep(for: .milliseconds(100)) }
        }
        let (status, body) = try await two.admin("POST", "/v1/rollouts", json: """
            {"release":{"name":"fledge-agent","version":"1.1.0"},"sources":[{"url":"\(seeder.baseURL)","capacityMbps":10000}],"maxConcurrent":2,"failureBudget":0}
            """)
        #expect(status == 201, "\(String(describing: body))")
        let id = try #require((body as? [String: Any])?["id"] as? String)

        var mostActive = 0
        var killed = false
        var phase = ""
        let deadline = ContinuousClock.now + .seconds(150)
        while phase != "completed" && phase != "paused" && ContinuousClock.now < deadline {
            let summary = try await two.admin("GET", "/v1/rollouts/\(id)").body as? [String: Any]
            let counts = summary?["counts"] as? [String: Int] ?? [:]
            let active = ["admitted", "downloading", "installing", "restarting", "confirming"].reduce(0) { $0 + counts[$1, default: 0] }
            mostActive = max(mostActive, active)
            phase = summary?["phase"] as? String ?? ""
            if !killed && active > 0 {
                one.kill()  // SIGKILL, mid-rollout
                killed = true
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let log = supervisors.map { $0.stderr.suffix(800) }.joined(separator: "\n---\n")
        #expect(killed && phase == "completed", "\(phase): \(log)")
        #expect(mostActive <= 2, "the limit of 2 held: at most \(mostActive) upgrading at once")
        for host in hosts { #expect(fleet.current(host) == "1.1.0", "\(host)") }
        // From the shared event log: each host admitted once, none failed.
        let events = try await OperatorToolsTests.events(two, id)
        let admitted = events.filter { $0.kind == "admitted" }.compactMap { $0.json["host"] as? String }
        #expect(admitted.sorted() == hosts, "each host admitted exactly once: \(admitted)")
        #expect(!events.contains { $0.kind == "failed" }, "\(events.map(\.kind))")
        #expect(events.filter { $0.kind == "completed" }.count == 1)
        // One instance sweeps at a time (a lease in Redis): the survivor runs them in the end.
        #expect(two.child.stderr.contains("this instance (") && two.child.stderr.contains(") runs the sweeps now"), "\(two.child.stderr.suffix(800))")
    }
}
