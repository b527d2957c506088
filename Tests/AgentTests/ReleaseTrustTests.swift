import Foundation
import FledgeTesting
import Seeder
import SystemPackage
import Testing
import Transfer

/// What a host runs is decided by signatures it trusts and by its own floor, never by an order
/// alone: real fledge-hbs, seeder and a supervised fledge-agent on loopback.
@Suite(.serialized) struct ReleaseTrustTests {
    typealias Fleet = UpgradeTests.Fleet

    /// Rolls `version` out to host-a and waits for `phase`; the summary, and the first failure's
    /// reason if any.
    static func roll(_ stage: UpgradeTests.Stage, _ version: String, until phase: String) async throws -> (phase: String?, reason: String?) {
        let summary = try await stage.hbs.waitForRollout(try await stage.rollout(version), phase: phase, seconds: 60)
        return (summary?["phase"] as? String, (summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String)
    }

    /// `POST /v1/rollouts/ID/rollback` and waits for the rollback's `phase`.
    static func rollBack(_ stage: UpgradeTests.Stage, _ id: String, until phase: String) async throws -> (id: String, phase: String?, reason: String?) {
        let (status, body) = try await stage.hbs.admin("POST", "/v1/rollouts/\(id)/rollback")
        #expect(status == 201 || status == 200, "\(String(describing: body))")
        let back = try #require((body as? [String: Any])?["id"] as? String)
        let summary = try await stage.hbs.waitForRollout(back, phase: phase, seconds: 60)
        return (back, summary?["phase"] as? String, (summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String)
    }

    static func latestRollout(_ hbs: HBSProcess) async throws -> String {
        let list = try #require(try await hbs.admin("GET", "/v1/rollouts").body as? [[String: Any]])
        return try #require(list.last?["id"] as? String)
    }

    /// 1.1.0 declares (signed) that nothing older than itself may run once it is confirmed: a
    /// rollback to 1.0.0 is refused and the host stays on 1.1.0.
    @Test func aRollbackBelowTheFloorIsRefused() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"), extra: ["--minimum-version", "1.1.0"])
        let stage = try await UpgradeTests.Stage(fleet)
        defer { stage.stop() }
        let upgrade = try await Self.roll(stage, "1.1.0", until: "completed")
        #expect(upgrade.phase == "completed", "\(stage.supervisor.stderr.suffix(2000))")
        let back = try await Self.rollBack(stage, try await Self.latestRollout(stage.hbs), until: "paused")
        #expect(back.phase == "paused")
        #expect(back.reason?.contains("1.0.0 is below 1.1.0, the minimum a release confirmed here declared") == true,
                "\(String(describing: back.reason))")
        #expect(fleet.current() == "1.1.0", "the host stays where it is")
        #expect(try await UpgradeTests.agent(stage.hbs)?["version"] as? String == "1.1.0")
        let floor = try String(contentsOfFile: fleet.data + "/floor", encoding: .utf8)
        #expect(floor.contains("\"minimumVersion\":\"1.1.0\"") && floor.contains("\"highestConfirmed\":\"1.1.0\""), "\(floor)")
    }

    /// 1.0.0's manifest expired long ago (published 100 days back, valid 90): a rollback to it is
    /// refused as expired; `fledge-seeder resign` gives the same bytes a new expiry, and the
    /// rollback then lands.
    @Test func anExpiredReleaseIsReSignedAndRolledBackTo() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let staged = fleet.directory.string + "/old-1.0.0"
        try FileManager.default.createDirectory(atPath: staged, withIntermediateDirectories: true)
        let binary = try await fleet.stamped("1.0.0")
        let key = try Ed25519PrivateKey(pem: String(contentsOfFile: fleet.keys + "/release.key", encoding: .utf8))
        var input = Publisher.Input(name: "fledge-agent", version: "1.0.0", binary: FilePath(binary))
        input.validSeconds = 90 * 24 * 3600
        _ = try Publisher(root: FilePath(fleet.origin), key: key).publish(input, now: UnixTime.now - 100 * 24 * 3600)
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let stage = try await UpgradeTests.Stage(fleet)
        defer { stage.stop() }
        #expect(try await Self.roll(stage, "1.1.0", until: "completed").phase == "completed", "\(stage.supervisor.stderr.suffix(2000))")
        let upgrade = try await Self.latestRollout(stage.hbs)

        let refused = try await Self.rollBack(stage, upgrade, until: "paused")
        #expect(refused.reason?.contains("expired") == true, "\(String(describing: refused.reason))")
        #expect(fleet.current() == "1.1.0")

        try await SeederCLI.resign(root: fleet.origin, version: "1.0.0", keys: [fleet.keys + "/release.key"])
        #expect(try await stage.hbs.admin("POST", "/v1/rollouts/\(refused.id)/abort").status == 200)
        let landed = try await Self.rollBack(stage, upgrade, until: "completed")
        #expect(landed.phase == "completed", "\(String(describing: landed.reason)) \(stage.supervisor.stderr.suffix(2000))")
        #expect(fleet.current() == "1.0.0")
        #expect(try await UpgradeTests.agent(stage.hbs)?["version"] as? String == "1.0.0")
    }

    /// The host pins three keys and needs two. A release signed by one key alone is refused;
    /// re-signed by the two others (the first retired: a rotation without a flag day), it runs.
    @Test func aRotatedKeyWithThresholdTwoOfThree() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let keys = ["k1", "k2", "k3"].map { fleet.directory.string + "/keys-\($0)" }
        for directory in keys { try await SeederCLI.keygen(into: directory) }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"), key: keys[0] + "/release.key")
        let stage = try await UpgradeTests.Stage(fleet) { hbs in
            try fleet.config(hbs: hbs, extra: ["trustedKeys": keys.map { $0 + "/release.pub" }, "signatureThreshold": 2])
        }
        defer { stage.stop() }
        let alone = try await Self.roll(stage, "1.1.0", until: "paused")
        #expect(alone.reason?.contains("1 valid signature of keys pinned here; 2 are required") == true, "\(String(describing: alone.reason))")
        #expect(fleet.current() == "1.0.0")

        try await SeederCLI.resign(root: fleet.origin, version: "1.1.0", keys: [keys[1] + "/release.key", keys[2] + "/release.key"])
        #expect(try await stage.hbs.admin("POST", "/v1/rollouts/\(try await Self.latestRollout(stage.hbs))/abort").status == 200)
        let rotated = try await Self.roll(stage, "1.1.0", until: "completed")
        #expect(rotated.phase == "completed", "\(String(describing: rotated.reason)) \(stage.supervisor.stderr.suffix(2000))")
        #expect(fleet.current() == "1.1.0")
    }
}
