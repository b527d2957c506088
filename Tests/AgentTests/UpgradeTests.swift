import Foundation
import Glibc
import FledgeTesting
import Testing
import Wire

/// Whole upgrades with real processes: fledge-hbs, a seeder, and a fledge-agent under
/// `scripts/supervise` (Restart=always plus the guard), on loopback.
@Suite(.serialized) struct UpgradeTests {
    /// Keys, an origin, and hosts with 1.0.0 installed in their data dirs (`data` is host-a's).
    struct Fleet {
        let directory: TemporaryDirectory
        let keys: String
        let origin: String
        let data: String

        init(hosts: [String] = ["host-a"]) async throws {
            directory = try TemporaryDirectory()
            keys = directory.string + "/keys"
            origin = directory.string + "/origin"
            data = directory.string + "/data"
            try await SeederCLI.keygen(into: keys)
            for host in hosts { try await SeederCLI.install(version: "1.0.0", into: dataDirectory(host)) }
        }

        func dataDirectory(_ host: String) -> String { host == "host-a" ? data : directory.string + "/data-\(host)" }

        /// Publishes `binary` as fledge-agent `version` with a unit file (deploy's, unless
        /// `unit` gives its text) and optionally a config, signed with the fleet's key unless
        /// `key` says another; `extra`: more `publish` flags.
        func publish(
            version: String, binary: String, key: String? = nil, unit: String? = nil, config: String? = nil, extra: [String] = []
        ) async throws {
            let staged = directory.string + "/build-\(version)"
            try FileManager.default.createDirectory(atPath: staged, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: binary, toPath: staged + "/fledge-agent")
            let text = try unit ?? String(contentsOfFile: Binaries.deployFile("fledge-agent.service"), encoding: .utf8)
            let unitFile = try TemporaryDirectory(existing: .init(staged)).write(text, to: "fledge-agent.service")
            let configFile = try config.map { try TemporaryDirectory(existing: .init(staged)).write($0, to: "fledge-agent.json").string }
            try await SeederCLI.publish(
                root: origin, version: version, binary: staged + "/fledge-agent", config: configFile, unit: unitFile.string,
                key: key ?? keys + "/release.key", extra: extra)
        }

        /// Publishes a `version` that passes the self-test (prints its version, accepts the
        /// config) and then exits at once each time it is started: a crash loop.
        func publishCrashing(version: String) async throws {
            let broken = try directory.write("""
                #!/bin/sh
                case "$1" in --version) echo \(version) ;; check-config) exit 0 ;; *) echo "crashing" >&2; exit 1 ;; esac
                """, to: "broken-\(version)")
            chmod(broken.string, 0o755)
            try await publish(version: version, binary: broken.string)
        }

        /// A stamped copy of this build reporting `version`.
        func stamped(_ version: String) async throws -> String {
            let path = directory.string + "/fledge-agent-\(version)"
            try await SeederCLI.stamp(version: version, to: path)
            return path
        }

        /// Writes host `host`'s config for `hbs` (a commit window of 1 s unless `extra` says
        /// otherwise) and returns its path.
        func config(hbs: HBSProcess, host: String = "host-a", peerPort: Int? = nil, extra: [String: Any] = [:]) throws -> String {
            let path = directory.string + "/agent-\(host).json"
            try JSONSerialization.data(withJSONObject: try configJSON(hbs: hbs, host: host, peerPort: peerPort, extra: extra))
                .write(to: URL(fileURLWithPath: path))
            return path
        }

        /// The config `config` writes, as a dictionary.
        func configJSON(hbs: HBSProcess, host: String = "host-a", peerPort: Int? = nil, extra: [String: Any] = [:]) throws -> [String: Any] {
            var json: [String: Any] = [
                "hbs": [hbs.agentURL], "hostname": host, "data": dataDirectory(host),
                "trustedKeys": [keys + "/release.pub"], "heartbeatSeconds": 2, "labels": ["idc": "a", "rack": "1"],
                "unitPath": Supervisor.unitPath(data: dataDirectory(host)), "commitSeconds": 1,
            ].merging(extra) { $1 }
            if let peerPort { json["peerListen"] = "127.0.0.1:\(peerPort)" }
            if let token = hbs.fleetTokenFile { json["fleetTokenFile"] = token }
            return json
        }

        /// The version `DATA/current` runs (its directory, less the `~N` of a second copy).
        func current(_ host: String = "host-a") -> String? {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: dataDirectory(host) + "/current"))
                .map { ReleaseName.version(ofDirectory: ($0 as NSString).lastPathComponent) }
        }
    }

    static func agent(_ hbs: HBSProcess, _ host: String = "host-a") async throws -> [String: Any]? {
        try await hbs.agent(host)
    }

    static func rollout(_ hbs: HBSProcess, version: String, seeder: SeederProcess, budget: Int = 0, extra: String = "") async throws -> String {
        let (status, body) = try await hbs.admin("POST", "/v1/rollouts", json: """
            {"release":{"name":"fledge-agent","version":"\(version)"},"sources":[{"url":"\(seeder.baseURL)","capacityMbps":10000}],"failureBudget":\(budget)\(extra)}
            """)
        #expect(status == 201, "\(String(describing: body))")
        return try #require((body as? [String: Any])?["id"] as? String)
    }

    static func supervise(
        _ fleet: Fleet, config: String, host: String = "host-a", service: [String: String] = [:], environment: [String: String] = [:]
    ) throws -> ChildProcess {
        try Supervisor.start(data: fleet.dataDirectory(host), config: config, service: service, environment: environment)
    }

    /// What every upgrade test runs: a seeder over the fleet's origin, fledge-hbs, and host-a's
    /// agent under the supervisor, registered with HBS (on 1.0.0). `config` writes host-a's
    /// config for an HBS (default: `Fleet.config`).
    final class Stage {
        let seeder: SeederProcess
        let hbs: HBSProcess
        let supervisor: ChildProcess

        init(
            _ fleet: Fleet, service: [String: String] = [:], environment: [String: String] = [:],
            config: ((HBSProcess) throws -> String)? = nil
        ) async throws {
            try FileManager.default.createDirectory(atPath: fleet.origin, withIntermediateDirectories: true)
            seeder = try await SeederProcess.start(root: fleet.origin)
            hbs = try await HBSProcess.start(data: fleet.directory.string + "/hbs")
            supervisor = try UpgradeTests.supervise(
                fleet, config: try (config ?? { try fleet.config(hbs: $0) })(hbs), service: service, environment: environment)
            for _ in 0..<100 where try await UpgradeTests.agent(hbs)?["version"] as? String != "1.0.0" {
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        /// Rolls `version` out from the seeder.
        func rollout(_ version: String, budget: Int = 0, extra: String = "") async throws -> String {
            try await UpgradeTests.rollout(hbs, version: version, seeder: seeder, budget: budget, extra: extra)
        }

        /// Stops all three; works in `defer`.
        func stop() {
            UpgradeTests.stop(supervisor)
            hbs.kill()
            seeder.kill()
        }
    }

    /// Stops the supervisor as systemd stops a unit (see `Supervisor.stopBlocking`); works in `defer`.
    static func stop(_ supervisor: ChildProcess) { Supervisor.stopBlocking(supervisor) }

    @Test func upgradesThroughARolloutAndCommits() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let stage = try await Stage(fleet)
        defer { stage.stop() }
        let (hbs, supervisor) = (stage.hbs, stage.supervisor)
        #expect(try await Self.agent(hbs)?["version"] as? String == "1.0.0", "\(supervisor.stderr.suffix(2000))")
        let id = try await stage.rollout("1.1.0")
        let phase = try await hbs.waitForRollout(id, phase: "completed", seconds: 60)?["phase"] as? String
        #expect(phase == "completed", "\(supervisor.stderr.suffix(3000))")
        #expect(try await Self.agent(hbs)?["version"] as? String == "1.1.0")
        #expect(fleet.current() == "1.1.0")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: fleet.data + "/previous")).map { ($0 as NSString).lastPathComponent } == "1.0.0")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/pending"), "committed")
        #expect(FileManager.default.fileExists(atPath: fleet.data + "/releases/1.1.0/fledge-agent.service"), "the unit is staged with it")
        supervisor.signal(SIGTERM)
        #expect(await supervisor.wait(timeout: .seconds(10)) == .exited(0), "a clean stop")
    }

    @Test func aReleaseThatDiesAtOnceIsRolledBackByTheGuard() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        try await fleet.publishCrashing(version: "1.1.0")
        let stage = try await Stage(fleet)
        defer { stage.stop() }
        let (hbs, supervisor) = (stage.hbs, stage.supervisor)
        let summary = try await hbs.waitForRollout(try await stage.rollout("1.1.0"), phase: "paused", seconds: 60)
        #expect(summary?["phase"] as? String == "paused", "the failure budget (0) pauses it: \(supervisor.stderr.suffix(3000))")
        let failed = (summary?["failed"] as? [[String: Any]])?.first
        #expect(failed?["host"] as? String == "host-a")
        #expect((failed?["reason"] as? String)?.contains("rolled back from 1.1.0 to 1.0.0") == true, "\(String(describing: failed))")
        #expect(fleet.current() == "1.0.0", "the host ends on the previous release")
        #expect(try await Self.agent(hbs)?["version"] as? String == "1.0.0")
        #expect(supervisor.stderr.contains("fledge-guard: rolled back from 1.1.0 to 1.0.0"))
    }

    /// Publishes 1.1.0, lets `spoil` damage the origin, rolls it out to one supervised agent,
    /// and returns the first failure's reason once the rollout paused at its budget of 0.
    static func refusedRollout(_ fleet: Fleet, spoil: (Fleet) throws -> Void) async throws -> (reason: String, agent: [String: Any]?) {
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        try spoil(fleet)
        let stage = try await Stage(fleet)
        defer { stage.stop() }
        let (hbs, supervisor) = (stage.hbs, stage.supervisor)
        let id = try await stage.rollout("1.1.0")
        let summary = try await hbs.waitForRollout(id, phase: "paused", seconds: 30)
        let reason = ((summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String) ?? "no failure: \(supervisor.stderr.suffix(1500))"
        return (reason, try await Self.agent(hbs))
    }

    @Test func aCorruptReleaseOnTheCDNIsRefusedAndNothingIsInstalled() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let (reason, agent) = try await Self.refusedRollout(fleet) { fleet in
            // Bit rot on the CDN after publishing: every copy it serves is wrong somewhere.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: fleet.origin + "/fledge-agent/1.1.0/fledge-agent"))
            try handle.seek(toOffset: 4096)
            try handle.write(contentsOf: Data([0xDE, 0xAD, 0xBE, 0xEF]))
            try handle.close()
        }
        #expect(reason.contains("corrupt piece"), "\(reason)")
        #expect(fleet.current() == "1.0.0")
        #expect(agent?["version"] as? String == "1.0.0")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/releases/1.1.0"), "nothing staged")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/store/fledge-agent/1.1.0/fledge-agent"), "nothing with a final name")
    }

    @Test func aTamperedManifestIsRefusedAndNothingIsInstalled() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let (reason, agent) = try await Self.refusedRollout(fleet) { fleet in
            let manifest = fleet.origin + "/fledge-agent/1.1.0/manifest.json"
            let text = try String(contentsOfFile: manifest, encoding: .utf8)
                .replacingOccurrences(of: "\"mode\" : 493", with: "\"mode\" : 2541")  // setuid
            try text.write(toFile: manifest, atomically: true, encoding: .utf8)
        }
        #expect(reason.contains("signature does not verify"), "\(reason)")
        #expect(fleet.current() == "1.0.0")
        #expect(agent?["version"] as? String == "1.0.0")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/releases/1.1.0"), "nothing staged")
    }
}
