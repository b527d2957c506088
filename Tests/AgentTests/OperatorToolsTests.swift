import Foundation
import FledgeTesting
import Glibc
import Testing
import Wire

/// What an operator uses, against a real fledge-hbs, seeder and supervised agents: the rollout
/// events stream (order, resume, replay), and `fledgectl` (every subcommand, exit statuses,
/// `--json` that parses, plain output when not on a terminal).
@Suite(.serialized) struct OperatorToolsTests {
    typealias Fleet = UpgradeTests.Fleet

    struct Run {
        let exit: ChildProcess.Exit
        let out: String
        let err: String
    }

    /// Runs fledgectl against `hbs`'s admin API (FLEDGE_HBS), output captured (not a terminal).
    static func fledgectl(_ hbs: HBSProcess, _ arguments: [String], environment: [String: String] = [:]) async throws -> Run {
        let child = try ChildProcess(
            Binaries.path("fledgectl"), arguments,
            environment: ["FLEDGE_HBS": "http://127.0.0.1:\(hbs.adminPort)", "NO_COLOR": "1"].merging(environment) { $1 })
        let exit = await child.wait(timeout: .seconds(120))
        return Run(exit: exit, out: child.stdout, err: child.stderr)
    }

    /// The whole event stream of a rollout, read with curl: `(id, event kind, JSON)` each.
    static func events(_ hbs: HBSProcess, _ id: String, lastEventID: Int? = nil) async throws -> [(id: Int, kind: String, json: [String: Any])] {
        var arguments = ["-sS", "-N", "--max-time", "60", "http://127.0.0.1:\(hbs.adminPort)/v1/rollouts/\(id)/events"]
        if let lastEventID { arguments += ["-H", "Last-Event-ID: \(lastEventID)"] }
        let (output, _) = try await ChildProcess.run(try Binaries.tool("curl"), arguments)
        var parser = ServerSentEventParser()
        return try parser.feed(Array(output.utf8)).map { event in
            (Int(event.id ?? "") ?? 0, event.event ?? "", (try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any]) ?? [:])
        }
    }

    @Test func aRolloutFollowedFromStartToEnd() async throws {
        let fleet = try await Fleet(hosts: ["host-a", "host-b"])
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        try await fleet.publish(version: "1.0.0", binary: try await fleet.stamped("1.0.0"))  // to roll back to
        let stage = try await UpgradeTests.Stage(fleet)
        defer { stage.stop() }
        let hbs = stage.hbs
        let second = try UpgradeTests.supervise(fleet, config: try fleet.config(hbs: hbs, host: "host-b"), host: "host-b")
        defer { UpgradeTests.stop(second) }
        for _ in 0..<100 where try await hbs.agent("host-b") == nil { try await Task.sleep(for: .milliseconds(100)) }

        let started = try await Self.fledgectl(hbs, [
            "rollout", "start", "--version", "1.1.0", "--source", "\(stage.seeder.baseURL)=10000", "--canary", "1", "--json",
        ])
        #expect(started.exit.succeeded, "\(started.err)")
        let summary = try JSONSerialization.jsonObject(with: Data(started.out.utf8)) as? [String: Any]
        let id = try #require(summary?["id"] as? String, "\(started.out)")
        #expect(summary?["hosts"] as? Int == 2)

        // Plain output (not a terminal): event lines and the end, exit 0 once completed.
        let watched = try await Self.fledgectl(hbs, ["rollout", "watch", id])
        #expect(watched.exit == .exited(0), "\(watched.out) \(watched.err)")
        #expect(watched.out.contains("batch 0 started") && watched.out.contains("batch 1 started"), "\(watched.out)")
        #expect(watched.out.contains("completed") && watched.out.contains("2/2 done"), "\(watched.out)")
        #expect(!watched.out.contains("\u{1B}["), "no terminal escapes when output is a pipe")

        // The stream: in order, numbered from 1, a finished rollout replays and ends.
        let all = try await Self.events(hbs, id)
        #expect(all.map(\.id) == Array(1...all.count))
        let kinds = all.map(\.kind)
        #expect(kinds.first == "created" && kinds.last == "completed", "\(kinds)")
        #expect(kinds.filter { $0 == "admitted" }.count == 2 && kinds.filter { $0 == "done" }.count == 2, "\(kinds)")
        #expect(kinds.firstIndex(of: "batchStarted")! < kinds.firstIndex(of: "admitted")!)
        #expect(all.allSatisfy { ($0.json["at"] as? Int ?? 0) > 1_700_000_000 })
        // Resumed after event 3: only what came after.
        let resumed = try await Self.events(hbs, id, lastEventID: 3)
        #expect(resumed.map(\.id) == Array(4...all.count))

        // --json: one object per event, then the summary.
        let json = try await Self.fledgectl(hbs, ["rollout", "watch", id, "--json"])
        #expect(json.exit == .exited(0))
        let lines = json.out.split(separator: "\n", omittingEmptySubsequences: true)
        let objects = lines.prefix(all.count).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == all.count && objects.first?["kind"] as? String == "created", "\(json.out)")
        let tail = lines.dropFirst(all.count).joined(separator: "\n")
        #expect((try? JSONSerialization.jsonObject(with: Data(tail.utf8)) as? [String: Any])?["phase"] as? String == "completed")

        // The rest of the subcommands.
        let status = try await Self.fledgectl(hbs, ["rollout", "status"])
        #expect(status.exit.succeeded && status.out.contains("rollout \(id) fledge-agent 1.1.0: completed"), "\(status.out)")
        let rollouts = try await Self.fledgectl(hbs, ["rollouts"])
        #expect(rollouts.exit.succeeded && rollouts.out.contains(id) && rollouts.out.split(separator: "\n").allSatisfy { $0.count <= 80 })
        let rolloutsJSON = try await Self.fledgectl(hbs, ["rollouts", "--json"])
        #expect((try? JSONSerialization.jsonObject(with: Data(rolloutsJSON.out.utf8)) as? [[String: Any]])?.count == 1)
        let agents = try await Self.fledgectl(hbs, ["agents", "--state", "idle", "--label", "idc=a"])
        #expect(agents.exit.succeeded && agents.out.contains("host-a") && agents.out.contains("host-b") && agents.out.contains("2 agents"), "\(agents.out)")
        #expect(agents.out.split(separator: "\n").allSatisfy { $0.count <= 80 }, "fits 80 columns: \(agents.out)")
        let none = try await Self.fledgectl(hbs, ["agents", "--version", "9.9.9", "--json"])
        #expect((try? JSONSerialization.jsonObject(with: Data(none.out.utf8)) as? [Any])?.isEmpty == true)
        let versions = try await Self.fledgectl(hbs, ["falcon", "versions"])
        #expect(versions.exit.succeeded && versions.out.contains("1.1.0: 2"), "\(versions.out)")
        let rollback = try await Self.fledgectl(hbs, ["rollout", "rollback", id])
        #expect(rollback.exit.succeeded && rollback.out.contains("back to 1.0.0 on 2 hosts"), "\(rollback.out) \(rollback.err)")
        let back = try await Self.fledgectl(hbs, ["rollout", "watch"])
        #expect(back.exit == .exited(0), "\(back.out)")
        #expect(try await Self.events(hbs, id).last?.kind == "rolledBack")
    }

    @Test func aPausedRolloutEndsTheWatchWithTwoAndAnAbortWithOne() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        // A crash loop: the guard rolls it back, the budget (0) pauses.
        try await fleet.publishCrashing(version: "1.1.0")
        let stage = try await UpgradeTests.Stage(fleet)
        defer { stage.stop() }
        let hbs = stage.hbs
        let started = try await Self.fledgectl(hbs, ["rollout", "start", "--version", "1.1.0", "--source", stage.seeder.baseURL, "--watch"])
        #expect(started.exit == .exited(2), "paused: \(started.out) \(started.err)")
        #expect(started.out.contains("host-a failed") && started.out.contains("rolled back from 1.1.0 to 1.0.0"), "\(started.out)")
        #expect(started.out.contains("paused"))
        let id = try #require(started.out.split(separator: " ").dropFirst().first.map(String.init))
        let resumed = try await Self.fledgectl(hbs, ["rollout", "resume", id])
        #expect(resumed.exit.succeeded, "\(resumed.err)")
        let aborted = try await Self.fledgectl(hbs, ["rollout", "abort", id])
        #expect(aborted.exit.succeeded && aborted.out.contains("aborted"), "\(aborted.out)")
        let watched = try await Self.fledgectl(hbs, ["rollout", "watch", id])
        #expect(watched.exit == .exited(1), "\(watched.out)")
        let kinds = try await Self.events(hbs, id).map(\.kind)
        // The resume re-admits the host, which fails again: the budget pauses it again before the abort.
        let tail = kinds.drop { $0 != "resumed" }
        #expect(kinds.contains("paused") && tail.first == "resumed" && tail.last == "aborted", "\(kinds)")
        let pause = try await Self.events(hbs, id).first { $0.kind == "aborted" }
        #expect((pause?.json["reason"] as? String)?.hasPrefix("aborted by 127.0.0.1") == true, "who asked: \(String(describing: pause?.json))")
    }

    @Test func errorsAreClearAndTheTokenIsUsed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let token = try directory.write("s3cret-admin-token\n", to: "admin-token")
        let hbs = try await HBSProcess.start(
            data: directory.string + "/hbs", extra: ["--admin-token-file", token.string, "--admin-allow", "10.99.0.0/16"])
        defer { hbs.kill() }
        let refused = try await Self.fledgectl(hbs, ["rollouts"])
        #expect(refused.exit == .exited(1) && refused.err.contains("HTTP 403"), "\(refused.err)")
        let allowed = try await Self.fledgectl(hbs, ["rollouts"], environment: ["FLEDGE_TOKEN_FILE": token.string])
        #expect(allowed.exit.succeeded, "\(allowed.err)")
        let missing = try await Self.fledgectl(hbs, ["rollout", "status", "r404"], environment: ["FLEDGE_TOKEN_FILE": token.string])
        #expect(missing.exit == .exited(1) && missing.err.contains("no rollout 'r404'"), "\(missing.err)")
        let unreachable = try await Self.fledgectl(hbs, ["rollouts", "--hbs", "http://127.0.0.1:1"])
        #expect(unreachable.exit == .exited(1) && unreachable.err.contains("cannot reach HBS"), "\(unreachable.err)")
        let bad = try await Self.fledgectl(hbs, ["rollout", "start", "--version", "1.1.0", "--source", "ftp://x"])
        #expect(bad.exit == .exited(64), "\(bad.err)")
        // A page on another site, in the operator's browser, changes nothing even with the token's
        // authority at hand (a loopback peer): the browser names its origin.
        let (page, _) = try await ChildProcess.run(try Binaries.tool("curl"), [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE", "-H", "Authorization: Bearer s3cret-admin-token",
            "-H", "Origin: http://evil.example", "http://127.0.0.1:\(hbs.adminPort)/agent/upgrade",
        ])
        #expect(page == "403", "cross-site change refused: \(page)")
        let falcon = try await Self.fledgectl(hbs, ["falcon", "status"], environment: ["FLEDGE_TOKEN_FILE": token.string])
        #expect(falcon.exit.succeeded && falcon.out.contains("\"data\""), "\(falcon.out)")
        let cancel = try await Self.fledgectl(hbs, ["falcon", "cancel"], environment: ["FLEDGE_TOKEN_FILE": token.string])
        #expect(cancel.exit.succeeded, "\(cancel.err)")
    }
}
