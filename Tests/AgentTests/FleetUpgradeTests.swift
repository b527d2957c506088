import Foundation
import FledgeTesting
import Glibc
import SystemPackage
import Testing

/// Several agents, and falcon's way: real fledge-hbs, origins (a seeder, plain nginx) and agents
/// under `scripts/supervise`, on loopback.
@Suite(.serialized) struct FleetUpgradeTests {
    typealias Fleet = UpgradeTests.Fleet

    /// Three agents, a canary then a batch of two: the later ones take their bytes from the
    /// canary, which serves the verified release from its peer server.
    @Test func laterAgentsFetchFromEarlierOnes() async throws {
        let hosts = ["host-a", "host-b", "host-c"]
        let fleet = try await Fleet(hosts: hosts)
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let releaseSize = try FileManager.default.attributesOfItem(atPath: fleet.origin + "/fledge-agent/bin_1.1.0")[.size] as! Int
        let seeder = try await SeederProcess.start(root: fleet.origin)
        defer { seeder.kill() }
        let hbs = try await HBSProcess.start(data: fleet.directory.string + "/hbs")
        defer { hbs.kill() }
        var supervisors: [ChildProcess] = []
        defer { supervisors.forEach(UpgradeTests.stop) }
        for host in hosts {
            let config = try fleet.config(hbs: hbs, host: host, peerPort: try Loopback.freePort())
            supervisors.append(try UpgradeTests.supervise(fleet, config: config, host: host))
        }
        for host in hosts {
            for _ in 0..<100 where try await UpgradeTests.agent(hbs, host) == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let id = try await UpgradeTests.rollout(hbs, version: "1.1.0", seeder: seeder, extra: #","canary":1,"batchSize":2"#)
        let summary = try await hbs.waitForRollout(id, phase: "completed")
        #expect(summary?["phase"] as? String == "completed", "\(supervisors.map { $0.stderr.suffix(1500) })")
        for host in hosts { #expect(fleet.current(host) == "1.1.0", "\(host)") }
        let bytes = summary?["bytesBySourceKind"] as? [String: Int] ?? [:]
        #expect((bytes["peer"] ?? 0) > 0, "later agents took bytes from the canary: \(bytes)")
        #expect((bytes["cdn"] ?? 0) < 3 * releaseSize, "the origin served less than three copies: \(bytes), release \(releaseSize)")
    }

    /// Four agents in one batch as a swarm (piece relay, one seed): the seed fetches from the
    /// origin, the others trade verified pieces while they download, and the origin sends
    /// about one copy where whole-file relay would send several.
    @Test func aSwarmTradesPiecesAndTheOriginSendsAboutOneCopy() async throws {
        let hosts = ["host-a", "host-b", "host-c", "host-d"]
        let fleet = try await Fleet(hosts: hosts)
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let releaseSize = try FileManager.default.attributesOfItem(atPath: fleet.origin + "/fledge-agent/1.1.0/fledge-agent")[.size] as! Int
        let seeder = try await SeederProcess.start(root: fleet.origin)
        defer { seeder.kill() }
        let settings = fleet.directory.string + "/hbs.json"
        try Data(#"{"engine":{"fastBeatSeconds":0.5,"planner":{"pieceRelay":true,"cdnSeeds":1,"swarmPeers":3}}}"#.utf8)
            .write(to: URL(fileURLWithPath: settings))
        let hbs = try await HBSProcess.start(data: fleet.directory.string + "/hbs", extra: ["--config", settings])
        defer { hbs.kill() }
        var supervisors: [ChildProcess] = []
        defer { supervisors.forEach(UpgradeTests.stop) }
        // Capped, so the download lasts a few seconds and pieces have time to travel.
        let caps: [String: Any] = ["downloadBytesPerSecond": releaseSize / 3, "peerUploadBytesPerSecond": releaseSize / 3]
        for host in hosts {
            let config = try fleet.config(hbs: hbs, host: host, peerPort: try Loopback.freePort(), extra: caps)
            supervisors.append(try UpgradeTests.supervise(fleet, config: config, host: host))
        }
        for host in hosts {
            for _ in 0..<100 where try await UpgradeTests.agent(hbs, host) == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let id = try await UpgradeTests.rollout(hbs, version: "1.1.0", seeder: seeder)
        let summary = try await hbs.waitForRollout(id, phase: "completed")
        #expect(summary?["phase"] as? String == "completed", "\(summary ?? [:]) \(supervisors.map { $0.stderr.split(separator: "\n").filter { !$0.contains("GET /") }.suffix(40).joined(separator: "\n") })")
        for host in hosts { #expect(fleet.current(host) == "1.1.0", "\(host)") }
        let bytes = summary?["bytesBySourceKind"] as? [String: Int] ?? [:]
        #expect((bytes["cdn"] ?? 0) < releaseSize * 8 / 5, "the origin sent about one copy: \(bytes), release \(releaseSize)")
        #expect((bytes["peer"] ?? 0) > 2 * releaseSize, "the three others fetched from peers: \(bytes)")
    }

    /// falcon's POST /agent/upgrade against plain nginx serving `bin_VERSION`: md5, one URL.
    @Test func falconRolloutFromPlainNginx() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let binary = try await fleet.stamped("1.1.0")
        let root = fleet.directory.string + "/cdn/file/open-falcon"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: binary, toPath: root + "/bin_1.1.0")
        chmod(fleet.directory.string + "/cdn", 0o755)
        let (md5, _) = try await ChildProcess.run(try Binaries.tool("md5sum"), [root + "/bin_1.1.0"])
        let nginx = try await Nginx.start(root: FilePath(fleet.directory.string + "/cdn"), prefix: FilePath(fleet.directory.string + "/nginx"))
        let hbs = try await HBSProcess.start(data: fleet.directory.string + "/hbs")
        defer { hbs.kill() }
        // Falcon's orders carry no signature: this host opts in to them.
        let supervisor = try UpgradeTests.supervise(fleet, config: try fleet.config(hbs: hbs, extra: ["allowFalcon": true]))
        defer { UpgradeTests.stop(supervisor) }
        for _ in 0..<100 where try await UpgradeTests.agent(hbs) == nil { try await Task.sleep(for: .milliseconds(100)) }

        let body = "{\"wgeturl\":\"\(nginx.baseURL)/file/open-falcon\",\"version\":\"1.1.0\",\"binfile_md5\":\"\(md5.prefix(32))\"}"
        let (status, _) = try await hbs.admin("POST", "/agent/upgrade", json: body)
        #expect(status == 200)
        var version: String?
        for _ in 0..<600 where version != "1.1.0" {
            version = try await UpgradeTests.agent(hbs)?["version"] as? String
            if version != "1.1.0" { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(version == "1.1.0", "\(supervisor.stderr.suffix(2000))")
        #expect(fleet.current() == "1.1.0")
        let (_, versions) = try await hbs.admin("GET", "/agentversions")
        #expect(((versions as? [String: Any])?["data"] as? [String: String])?["host-a"] == "1.1.0")
        await nginx.stop()
    }

    /// The same falcon order to an agent that has not opted in: refused before a byte is
    /// fetched, with the switch to set, and the host keeps running its release.
    @Test func aFalconOrderToADefaultAgentIsRefused() async throws {
        let fleet = try await UpgradeTests.Fleet()
        defer { fleet.directory.remove() }
        let hbs = try await HBSProcess.start(data: fleet.directory.string + "/hbs")
        defer { hbs.kill() }
        let supervisor = try UpgradeTests.supervise(fleet, config: try fleet.config(hbs: hbs))
        defer { UpgradeTests.stop(supervisor) }
        for _ in 0..<100 where try await UpgradeTests.agent(hbs) == nil { try await Task.sleep(for: .milliseconds(100)) }

        let body = "{\"wgeturl\":\"http://127.0.0.1:1/file/open-falcon\",\"version\":\"1.1.0\",\"binfile_md5\":\"\(String(repeating: "a", count: 32))\"}"
        #expect(try await hbs.admin("POST", "/agent/upgrade", json: body).status == 200)
        var agent: [String: Any]?
        for _ in 0..<150 where agent?["error"] == nil {
            agent = try await UpgradeTests.agent(hbs)
            if agent?["error"] == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let error = agent?["error"] as? String
        #expect(error?.contains("carries no signature") == true && error?.contains("allowFalcon: true") == true, "\(String(describing: agent))")
        #expect(supervisor.stderr.contains("carries no signature"), "the agent says so in its log too")
        #expect(supervisor.isRunning && fleet.current() == "1.0.0", "the host keeps running")
        #expect(agent?["version"] as? String == "1.0.0")
    }
}
