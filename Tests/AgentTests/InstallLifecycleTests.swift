import Foundation
import FledgeTesting
import Glibc
import SystemPackage
import Testing

/// A release that turns out bad after the switch, under the real unit (deploy/fledge-agent.service
/// run by `scripts/supervise`): each ends with the host on the previous release (binary, config
/// and unit), HBS showing it failed with the reason, and the rollout paused at its failure
/// budget. Each prints how long the rollback took, from the fault to the old version's report.
@Suite(.serialized) struct InstallLifecycleTests {
    typealias Fleet = UpgradeTests.Fleet

    /// Writes an executable script into the fleet's directory.
    static func script(_ fleet: Fleet, _ name: String, _ text: String) throws -> String {
        let path = try fleet.directory.write(text, to: name).string
        chmod(path, 0o755)
        return path
    }

    /// host-a's config and unit as they are, to compare after a rollback.
    struct HostFiles: Equatable {
        let config: Data?
        let unit: Data?

        init(_ fleet: Fleet) {
            config = FileManager.default.contents(atPath: fleet.directory.string + "/agent-host-a.json")
            unit = FileManager.default.contents(atPath: Supervisor.unitPath(data: fleet.data))
        }
    }

    /// Waits until HBS hears host-a on 1.0.0 again reporting the rollback, and the rollout
    /// paused; expects the failure's reason to say `why`, and the host to be where it started
    /// (1.0.0, config and unit as `before`, no trial left). Returns the supervisor's log and
    /// when the old version's report arrived.
    static func expectRolledBack(
        _ stage: UpgradeTests.Stage, _ id: String, _ fleet: Fleet, before: HostFiles, why: String
    ) async throws -> (log: String, reportedAt: Date?) {
        var reportedAt: Date?
        let deadline = ContinuousClock.now + .seconds(120)
        while reportedAt == nil, ContinuousClock.now < deadline {
            let agent = try await stage.hbs.agent("host-a")
            if agent?["version"] as? String == "1.0.0", agent?["state"] as? String == "failed",
               (agent?["error"] as? String)?.contains("rolled back") == true {
                reportedAt = Date()
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let summary = try await stage.hbs.waitForRollout(id, phase: "paused", seconds: 30)
        let reason = ((summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String) ?? "no failure"
        let log = stage.supervisor.stderr
        #expect(summary?["phase"] as? String == "paused", "\(log.suffix(3000))")
        #expect(reason.contains("rolled back from 1.1.0 to 1.0.0") && reason.contains(why), "\(reason)")
        #expect(fleet.current() == "1.0.0", "\(log.suffix(3000))")
        #expect(HostFiles(fleet) == before, "the config and unit are the ones it ran with")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/pending"))
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/undo"))
        return (log, reportedAt)
    }

    /// When `current` first points at `version` (polled), within `seconds`.
    static func switched(_ fleet: Fleet, to version: String, seconds: Int = 60) async -> Date? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if fleet.current() == version { return Date() }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    static func unixTime(in path: String) -> Date? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            .map { Date(timeIntervalSince1970: $0) }
    }

    /// A release that never gets ready: one that hangs, and one that also ignores SIGTERM.
    @Test(arguments: [false, true])
    func aReleaseThatHangsIsRolledBack(ignoringSIGTERM: Bool) async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let hang = try Self.script(fleet, "hang-1.1.0", """
            #!/bin/sh
            case "$1" in --version) echo 1.1.0; exit 0 ;; check-config) exit 0 ;; esac
            \(ignoringSIGTERM ? "trap '' TERM" : "")
            while :; do sleep 1; done
            """)
        try await fleet.publish(version: "1.1.0", binary: hang)
        let stage = try await UpgradeTests.Stage(
            fleet, service: ["TimeoutStartSec": "4", "TimeoutStopSec": "2", "Environment": "FLEDGE_MAX_STARTS=1"])
        defer { stage.stop() }
        let before = HostFiles(fleet)
        let id = try await stage.rollout("1.1.0")
        let fault = await Self.switched(fleet, to: "1.1.0")
        let (log, back) = try await Self.expectRolledBack(stage, id, fleet, before: before, why: "did not get ready in 1 starts")
        #expect(log.contains("not ready within TimeoutStartSec=4s"))
        if ignoringSIGTERM { #expect(log.contains("SIGKILL"), "a release deaf to SIGTERM is killed") }
        if let fault, let back {
            print("rollback timing: hang\(ignoringSIGTERM ? " ignoring SIGTERM" : ""): \(String(format: "%.1f", back.timeIntervalSince(fault))) s from the switch to 1.0.0 reporting")
        }
    }

    /// A release that runs, confirms with HBS, and crashes 10 s later: inside its commit window,
    /// so the guard rolls it back at the next start, and HBS never counted it done. (It dies by
    /// SIGKILL: a SIGSEGV sent from outside is caught by Swift's backtracer, which prints a
    /// backtrace and lets the process run on; only a real fault ends it.)
    @Test func aReleaseThatCrashesAfterConfirmingIsRolledBack() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let real = try await fleet.stamped("1.1.0")
        let crashedAt = fleet.directory.string + "/crashed-at"
        let crashing = try Self.script(fleet, "crashing-1.1.0", """
            #!/bin/sh
            case "$1" in --version|check-config) exec \(real) "$@" ;; esac
            ( sleep 10; date +%s.%N > \(crashedAt); kill -KILL $$ ) &
            exec \(real) "$@"
            """)
        try await fleet.publish(version: "1.1.0", binary: crashing)
        let stage = try await UpgradeTests.Stage(fleet) { try fleet.config(hbs: $0, extra: ["commitSeconds": 20]) }
        defer { stage.stop() }
        let before = HostFiles(fleet)
        let id = try await stage.rollout("1.1.0")
        // It runs and confirms: HBS hears 1.1.0, on trial.
        var confirming = false
        for _ in 0..<300 where !confirming {
            let agent = try await stage.hbs.agent("host-a")
            confirming = agent?["version"] as? String == "1.1.0" && agent?["state"] as? String == "confirming"
            if !confirming { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(confirming, "\(stage.supervisor.stderr.suffix(2000))")
        #expect((try await stage.hbs.admin("GET", "/v1/rollouts/\(id)").body as? [String: Any]).flatMap { ($0["counts"] as? [String: Int])?["done"] } == nil,
                "a release on trial is not done")
        let (_, back) = try await Self.expectRolledBack(stage, id, fleet, before: before, why: "stopped inside its commit window")
        // HBS shows the old version started again after the crash, its count of starts anew.
        let agent = try await stage.hbs.agent("host-a")
        let crash = try #require(Self.unixTime(in: crashedAt))
        #expect(agent?["starts"] as? Int == 1 && (agent?["startedAt"] as? Int ?? 0) >= Int(crash.timeIntervalSince1970),
                "HBS shows when and how often it started: \(String(describing: agent))")
        if let fault = Self.unixTime(in: crashedAt), let back {
            print("rollback timing: crash 10 s after confirming: \(String(format: "%.1f", back.timeIntervalSince(fault))) s from the crash to 1.0.0 reporting")
        }
    }

    /// A release whose config declares a health probe that fails: the agent says why and ends;
    /// the guard puts back the old binary and the old config.
    @Test func aReleaseWhoseProbeFailsIsRolledBackWithItsConfig() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let stage = try await UpgradeTests.Stage(fleet)
        defer { stage.stop() }
        let before = HostFiles(fleet)
        let failedAt = fleet.directory.string + "/probe-failed-at"
        let releaseConfig = try fleet.configJSON(hbs: stage.hbs, extra: [
            "commitSeconds": 30,
            "healthProbe": [
                "command": ["/bin/sh", "-c", "date +%s.%N > \(failedAt); echo 'the service on :9 does not answer'; exit 3"],
                "intervalSeconds": 1,
            ],
        ])
        let text = String(decoding: try JSONSerialization.data(withJSONObject: releaseConfig), as: UTF8.self)
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"), config: text)
        let id = try await stage.rollout("1.1.0")
        let (log, back) = try await Self.expectRolledBack(
            stage, id, fleet, before: before, why: "health probe /bin/sh exited 3: the service on :9 does not answer")
        #expect(log.contains("installed the release's config"), "the release's config was in place")
        if let fault = Self.unixTime(in: failedAt), let back {
            print("rollback timing: failed health probe: \(String(format: "%.1f", back.timeIntervalSince(fault))) s from the failed probe to 1.0.0 reporting")
        }
    }

    /// A release whose unit file passes every check but cannot start the agent (its ExecStart
    /// names a config that is not there): the guard puts the old unit back with the binary,
    /// and the next start runs under it.
    @Test func aReleaseWithABrokenUnitIsRolledBackWithIt() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let deployUnit = try String(contentsOfFile: Binaries.deployFile("fledge-agent.service"), encoding: .utf8)
        let broken = deployUnit.replacingOccurrences(of: "--config /etc/fledge/agent.json", with: "--config /etc/fledge/agent-missing.json")
        #expect(broken != deployUnit)
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"), unit: broken)
        let stage = try await UpgradeTests.Stage(fleet, service: ["Environment": "FLEDGE_MAX_STARTS=2"])
        defer { stage.stop() }
        let before = HostFiles(fleet)
        let id = try await stage.rollout("1.1.0")
        let fault = await Self.switched(fleet, to: "1.1.0")
        let (log, back) = try await Self.expectRolledBack(stage, id, fleet, before: before, why: "did not get ready in 2 starts")
        #expect(log.contains("agent-missing.json"), "the broken unit did run")
        #expect(log.contains("the unit file was put back"))
        if let fault, let back {
            print("rollback timing: broken unit: \(String(format: "%.1f", back.timeIntervalSince(fault))) s from the switch to 1.0.0 reporting")
        }
    }

    /// The agent pings the watchdog while its heartbeat loop lives; frozen (SIGSTOP), it is
    /// stopped at WatchdogSec (SIGABRT, then SIGKILL after TimeoutAbortSec) and started again.
    @Test func aFrozenAgentIsRestartedByTheWatchdog() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let stage = try await UpgradeTests.Stage(fleet, service: ["WatchdogSec": "4", "TimeoutAbortSec": "1"])
        defer { stage.stop() }
        // Alive and pinging: well past WatchdogSec, nothing is stopped.
        try await Task.sleep(for: .seconds(9))
        #expect(!stage.supervisor.stderr.contains("WatchdogSec"), "\(stage.supervisor.stderr.suffix(2000))")
        let before = try await stage.hbs.agent("host-a")
        let (firstStart, starts) = (try #require(before?["startedAt"] as? Int), try #require(before?["starts"] as? Int))
        let pid = try #require(UpgradeFailureTests.agentPID(fleet))
        kill(pid, SIGSTOP)
        var restarted = false
        for _ in 0..<150 where !restarted {
            let agent = try await stage.hbs.agent("host-a")
            // A new process: counted once more, started after the frozen one (4 s at least).
            restarted = agent?["starts"] as? Int == starts + 1 && (agent?["startedAt"] as? Int ?? 0) > firstStart
            if !restarted { try await Task.sleep(for: .milliseconds(100)) }
        }
        let log = stage.supervisor.stderr
        #expect(restarted, "\(log.suffix(2000))")
        #expect(log.contains("no WATCHDOG=1 within WatchdogSec=4s") && log.contains("SIGKILL"), "\(log.suffix(2000))")
        #expect(kill(pid, 0) != 0, "the frozen agent is gone")
    }

    /// An install that fails midway (its unit cannot be written) takes back what it had put in
    /// place (the release's config) before the old version reports the failure.
    @Test func anInstallThatFailsMidwayIsTakenBack() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let stage = try await UpgradeTests.Stage(fleet) { try fleet.config(hbs: $0, extra: ["unitPath": "/proc/fledge-nowhere/fledge-agent.service"]) }
        defer { stage.stop() }
        let before = HostFiles(fleet)
        let releaseConfig = try fleet.configJSON(hbs: stage.hbs, extra: ["labels": ["idc": "a", "rack": "9"]])
        let text = String(decoding: try JSONSerialization.data(withJSONObject: releaseConfig), as: UTF8.self)
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"), config: text)
        let summary = try await stage.hbs.waitForRollout(try await stage.rollout("1.1.0"), phase: "paused", seconds: 30)
        let reason = ((summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String) ?? "no failure"
        #expect(reason.contains("/proc/fledge-nowhere"), "\(reason)")
        #expect(stage.supervisor.stderr.contains("installed the release's config"), "the config was in place first")
        #expect(fleet.current() == "1.0.0")
        #expect(HostFiles(fleet) == before, "the config is back as it was")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/pending"))
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/undo"))
    }

    /// A unit that drops the guard is refused before the switch: nothing changes on the host.
    @Test func aUnitWithoutTheGuardIsRefused() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let deployUnit = try String(contentsOfFile: Binaries.deployFile("fledge-agent.service"), encoding: .utf8)
        let unguarded = deployUnit.split(separator: "\n").filter { !$0.hasPrefix("ExecStartPre=") }.joined(separator: "\n") + "\n"
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"), unit: unguarded)
        let stage = try await UpgradeTests.Stage(fleet)
        defer { stage.stop() }
        let summary = try await stage.hbs.waitForRollout(try await stage.rollout("1.1.0"), phase: "paused", seconds: 30)
        let reason = ((summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String) ?? "no failure"
        #expect(reason.contains("unit file is refused: ExecStartPre= must run fledge-guard"), "\(reason)")
        #expect(fleet.current() == "1.0.0")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/pending"))
    }

    /// Falcon's config-only (type 1) and binary-and-config (type 2) upgrades: the new config in
    /// place, confirmed by its digest, committed, and HBS counting the host done.
    @Test(arguments: [1, 2])
    func aFalconConfigUpgradeConfirms(type: Int) async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        let root = fleet.directory.string + "/cdn/file/open-falcon"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let nginx = try await Nginx.start(root: FilePath(fleet.directory.string + "/cdn"), prefix: FilePath(fleet.directory.string + "/nginx"))
        defer { Task { await nginx.stop() } }
        let hbs = try await HBSProcess.start(data: fleet.directory.string + "/hbs")
        defer { hbs.kill() }
        let config = try fleet.config(hbs: hbs, extra: ["allowFalcon": true])
        // The new config moves the host to rack 2.
        let newConfig = try fleet.configJSON(hbs: hbs, extra: ["allowFalcon": true, "labels": ["idc": "a", "rack": "2"]])
        try JSONSerialization.data(withJSONObject: newConfig).write(to: URL(fileURLWithPath: root + "/cfg_1.1.0"))
        let md5 = { (path: String) async throws -> String in
            String(try await ChildProcess.run(try Binaries.tool("md5sum"), [path]).0.prefix(32))
        }
        var body = "{\"wgeturl\":\"\(nginx.baseURL)/file/open-falcon\",\"version\":\"1.1.0\",\"type\":\(type),\"cfgfile_md5\":\"\(try await md5(root + "/cfg_1.1.0"))\""
        if type == 2 {
            try FileManager.default.copyItem(atPath: try await fleet.stamped("1.1.0"), toPath: root + "/bin_1.1.0")
            body += ",\"binfile_md5\":\"\(try await md5(root + "/bin_1.1.0"))\""
        }
        body += "}"
        chmod(fleet.directory.string + "/cdn", 0o755)
        let supervisor = try UpgradeTests.supervise(fleet, config: config)
        defer { UpgradeTests.stop(supervisor) }
        for _ in 0..<100 where try await hbs.agent("host-a") == nil { try await Task.sleep(for: .milliseconds(100)) }

        #expect(try await hbs.admin("POST", "/agent/upgrade", json: body).status == 200)
        var agent: [String: Any]?
        var done = false
        for _ in 0..<600 where !done {
            agent = try await hbs.agent("host-a")
            done = agent?["state"] as? String == "idle" && (agent?["labels"] as? [String: String])?["rack"] == "2"
                && (agent?["release"] as? String ?? agent?["version"] as? String) == "1.1.0"
            if !done { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(done, "\(String(describing: agent)) \(supervisor.stderr.suffix(3000))")
        #expect(agent?["version"] as? String == (type == 1 ? "1.0.0" : "1.1.0"), "a config-only upgrade keeps the binary")
        #expect(fleet.current() == "1.1.0")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/pending"), "committed")
        let installed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any]
        #expect((installed?["labels"] as? [String: String])?["rack"] == "2", "the new config is where the unit starts the agent from")
        let (_, rollouts) = try await hbs.admin("GET", "/v1/rollouts")
        let id = try #require((rollouts as? [[String: Any]])?.first?["id"] as? String, "\(String(describing: rollouts))")
        // A falcon rollout stays open (hosts that join later are upgraded too): its host is done.
        let summary = try await hbs.admin("GET", "/v1/rollouts/\(id)").body as? [String: Any]
        #expect((summary?["counts"] as? [String: Int])?["done"] == 1, "HBS counts it done: \(String(describing: summary))")
    }
}

/// Power lost at each step of an install: the agent SIGKILLed there (a failpoint, once), and the
/// host still ends on a good version with a true report to HBS.
@Suite(.serialized) struct PowerLossTests {
    /// Where it dies, and where the host must end: 1.1.0 committed, or (killed inside its
    /// commit window) 1.0.0 with the rollback reported.
    static let steps: [(String, String)] = [
        ("staged", "1.1.0"), ("pending", "1.1.0"), ("installed", "1.1.0"), ("switched", "1.1.0"),
        ("trial", "1.1.0"), ("ready", "1.0.0"), ("committed", "1.1.0"),
    ]

    @Test(arguments: steps)
    func killedAtEveryStepOfAnInstall(step: String, ends: String) async throws {
        let fleet = try await UpgradeTests.Fleet()
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let marker = fleet.directory.string + "/failpoint-\(step)"
        let stage = try await UpgradeTests.Stage(fleet, environment: ["FLEDGE_FAILPOINT": "\(step):\(marker)"])
        defer { stage.stop() }
        let id = try await stage.rollout("1.1.0")
        let summary = try await stage.hbs.waitForRollout(id, phase: ends == "1.1.0" ? "completed" : "paused", seconds: 90)
        let log = stage.supervisor.stderr
        #expect(FileManager.default.fileExists(atPath: marker), "it died at \(step): \(log.suffix(2000))")
        #expect(log.contains("failpoint \(step): killed"))
        #expect(fleet.current() == ends, "\(log.suffix(3000))")
        let agent = try await stage.hbs.agent("host-a")
        #expect(agent?["version"] as? String == ends)
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/pending"))
        if ends == "1.1.0" {
            #expect(summary?["phase"] as? String == "completed")
            #expect(agent?["state"] as? String == "idle")
        } else {
            let reason = ((summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String) ?? "no failure"
            #expect(reason.contains("stopped inside its commit window"), "\(reason)")
            #expect(agent?["state"] as? String == "failed")
        }
    }
}
