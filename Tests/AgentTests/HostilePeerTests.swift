import FledgeTesting
import Foundation
import LocalFleet
import SystemPackage
import Testing
import Transfer
import Wire

/// One misbehaving peer must not stall the hosts that ask it. A local fleet of three real
/// agents and one origin upgrades while a hostile peer (`HostilePeer`, a separate python
/// process) beats to the same HBS, claims the release, and serves it badly in one of seven
/// ways. The real hosts must all run the new version, byte for byte as published, within a
/// bound many times the fleet's clean upgrade time; the rollout itself never completes (the
/// hostile host never does), so the test waits on the hosts, not the rollout.
@Suite(.serialized) struct HostilePeerTests {
    /// How long the three real hosts may take. The same fleet upgrades in 3-7 s on a
    /// two-core machine when the hostile peer stops before the rollout; this is over ten
    /// times that, for a machine loaded by other builds.
    static let bound = Duration.seconds(90)

    /// A swarm (piece relay): the hostile peer gets its order like the others and, from then
    /// on, claims all pieces but one while "downloading"; HBS lists it to the real hosts as a
    /// swarm peer (in their first order or re-sent with more peers).
    @Test(arguments: HostilePeer.Mode.allCases)
    func aSwarmUpgradesPastAHostilePeer(mode: HostilePeer.Mode) async throws {
        try await Self.upgrade(past: mode, claim: .pieces, pieceRelay: true)
    }

    /// Whole-file relay: the hostile peer runs the release already and holds it whole (HBS saw
    /// it run the version, so it vouches for it), so the planner makes it the first source
    /// (and manifest source) of every real host, an endless 200 being what it sends.
    @Test func wholeFileRelayUpgradesPastAnEndlessPeer() async throws {
        try await Self.upgrade(past: .endless200, claim: .whole, pieceRelay: false)
    }

    static func upgrade(past mode: HostilePeer.Mode, claim: HostilePeer.Claim, pieceRelay: Bool) async throws {
        try await TemporaryDirectory.with("fledge-hostile-\(mode)") { directory in
            var plan = FleetPlan()
            plan.agents = 3
            plan.racks = 1  // every host, and the hostile peer, in idc a rack r1: it is "near" to all
            plan.pieceRelay = pieceRelay
            // The release is the stamped agent as built (the hosts restart into it, so it must
            // be a real one): about 40 MB in a debug build, 1 MiB pieces. At these caps each
            // host downloads for a few seconds: time for HBS to hand the hostile peer out while
            // the real hosts still fetch.
            plan.pieceSize = 1 << 20
            plan.agentDownloadBytesPerSecond = 16_000_000
            plan.agentUploadBytesPerSecond = 16_000_000
            plan.originBytesPerSecond = 32_000_000
            let fleet = try await LocalFleet.start(plan, in: directory.string)
            var hostile: HostilePeer?
            do {
                let published = try await fleet.publishTarget()
                let expected = try Self.publishedBinarySHA256(published)
                hostile = try await HostilePeer.start(
                    hbsPort: fleet.hbs.agentPort, hostname: "hostile-\(mode)", mode: mode, pieces: published.pieces,
                    labels: ["idc": "a", "rack": "r1"], origin: fleet.origins[0].url, claim: claim,
                    version: plan.toVersion, fromVersion: plan.fromVersion, fleetTokenFile: fleet.hbs.fleetTokenFile)
                try await Self.waitUntilListed(hostile!, hbs: fleet.hbs)

                let (id, postedAt) = try await fleet.startRollout(RolloutPlan())
                let upgraded = try await Self.waitForHosts(fleet, version: plan.toVersion, within: bound)
                let elapsed = ContinuousClock.now - postedAt
                let report = await Self.report(fleet, hostile!, rollout: id)
                #expect(upgraded, "\(mode): not every real host reported \(plan.toVersion) within \(bound) (\(elapsed.components.seconds) s after the rollout's POST)\n\(report)")
                if upgraded {
                    for host in fleet.hosts {
                        let binary = FilePath(host.data + "/current/fledge-agent")
                        let digest = try Digest.file(at: binary).sha256
                        #expect(host.installedVersion == plan.toVersion, "\(host.name): DATA/current is \(host.installedVersion ?? "nothing")")
                        #expect(digest == expected, "\(host.name): \(binary) hashes to \(digest), the published binary to \(expected)")
                    }
                }
                print("hostile peer \(mode) (claims \(claim)): real hosts upgraded: \(upgraded), after \(elapsed.components.seconds) s; it answered \(hostile!.releaseRequests.count) release/map requests")
                // Not vacuous: an agent did ask the hostile peer for pieces or its map.
                #expect(!hostile!.releaseRequests.isEmpty, "\(mode): no agent asked the hostile peer anything\n\(report)")
            } catch {
                await hostile?.stop()
                await fleet.stop()
                throw error
            }
            await hostile?.stop()
            await fleet.stop()
        }
    }

    /// The SHA-256 the signed manifest gives the release's binary.
    static func publishedBinarySHA256(_ published: SeederCLI.Published) throws -> String {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: published.manifest)))
        guard let binary = manifest.files.first(where: { $0.name == "fledge-agent" }) else {
            throw HarnessError("\(published.manifest) lists no fledge-agent: \(manifest.files.map(\.name))")
        }
        return binary.sha256
    }

    /// Until HBS lists the hostile peer (before the rollout, so it is a target and a source).
    static func waitUntilListed(_ hostile: HostilePeer, hbs: HBSProcess) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if try await hbs.agent(hostile.hostname) != nil { return }
            guard hostile.child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("HBS never listed \(hostile.hostname) (\(hostile.child.exit.map { "\($0)" } ?? "running")): \(hostile.log.suffix(1500))")
    }

    /// Polls HBS until every real host reports `version`, at most `bound`; whether they did.
    static func waitForHosts(_ fleet: LocalFleet, version: String, within bound: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + bound
        while ContinuousClock.now < deadline {
            let versions = try await fleet.reportedVersions()
            if fleet.hosts.allSatisfy({ versions[$0.name] == version }) { return true }
            try await Task.sleep(for: .milliseconds(250))
        }
        return false
    }

    /// What to read when it fails: the rollout's counts as HBS sees them, then each host's
    /// state as HBS last heard it and its log tail (its peer server's request lines left
    /// out), then the hostile peer's stderr tail.
    static func report(_ fleet: LocalFleet, _ hostile: HostilePeer, rollout id: String) async -> String {
        var text = ""
        if let summary = try? await fleet.hbs.admin("GET", "/v1/rollouts/\(id)").body as? [String: Any] {
            text += "rollout \(id): \(summary["phase"] ?? "?"), hosts by phase \(summary["counts"] ?? "?"), bytes by source kind \(summary["bytesBySourceKind"] ?? "?")\n"
        }
        let agents = (try? await fleet.hbs.agents()) ?? []
        for host in fleet.hosts {
            let seen = agents.first { $0["host"] as? String == host.name }
            let state = seen.map { "\($0["version"] ?? "?") \($0["state"] ?? "?")\(($0["error"] as? String).map { ", error: " + $0 } ?? "")" } ?? "never seen"
            let lines = host.log.split(separator: "\n").filter { !$0.contains(" GET /") }.suffix(25)
            text += "--- \(host.name) (HBS: \(state); DATA/current: \(host.installedVersion ?? "?")), log tail:\n\(lines.joined(separator: "\n"))\n"
        }
        let lines = hostile.log.split(separator: "\n").suffix(30)
        text += "--- \(hostile.hostname) (\(hostile.url)), stderr tail:\n\(lines.joined(separator: "\n"))\n"
        return text
    }
}
