import Foundation
import FledgeTesting
import Glibc
import Testing

/// An upgrade interrupted by the host: the agent SIGKILLed mid-download resumes from its
/// verified pieces; a full disk fails the upgrade cleanly and the old version runs on.
@Suite(.serialized) struct UpgradeFailureTests {
    typealias Fleet = UpgradeTests.Fleet

    static func agentPID(_ fleet: Fleet) -> Int32? {
        let out = (try? ChildProcess.runBlocking("/usr/bin/pgrep", ["-f", fleet.data + "/current/fledge-agent"]).stdout) ?? ""
        return out.split(separator: "\n").first.flatMap { Int32($0) }
    }

    @Test func killedMidDownloadResumes() async throws {
        let fleet = try await Fleet()
        defer { fleet.directory.remove() }
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let size = try FileManager.default.attributesOfItem(atPath: fleet.origin + "/fledge-agent/bin_1.1.0")[.size] as! Int
        // Slow enough to be caught half-way: the whole release takes about four seconds.
        let stage = try await UpgradeTests.Stage(fleet) { hbs in
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: try fleet.config(hbs: hbs)))) as! [String: Any]
            config["downloadBytesPerSecond"] = size / 4
            let path = fleet.directory.string + "/agent-slow.json"
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
            return path
        }
        defer { stage.stop() }
        let (hbs, supervisor, seeder) = (stage.hbs, stage.supervisor, stage.seeder)
        let id = try await stage.rollout("1.1.0", budget: 3)

        // Kill it (SIGKILL) once part of the release is on disk.
        let record = fleet.data + "/store/fledge-agent/1.1.0/.partial/fledge-agent.pieces"
        let started = await ChildProcess.waitFor(seconds: 30) {
            ((try? Data(contentsOf: URL(fileURLWithPath: record))) ?? Data()).filter { $0 == 1 }.count > 10
        }
        #expect(started, "the download began")
        let pid = try #require(Self.agentPID(fleet))
        Glibc.kill(pid, SIGKILL)

        let summary = try await hbs.waitForRollout(id, phase: "completed")
        #expect(summary?["phase"] as? String == "completed", "\(supervisor.stderr.suffix(2000))")
        #expect(fleet.current() == "1.1.0")
        // Resumed, not restarted: the origin served well under two copies of the binary.
        let served = seeder.child.stderr.split(separator: "\n").compactMap { line -> Int? in
            guard line.contains("/fledge-agent/1.1.0/fledge-agent"), let range = line.range(of: "bytes=") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        }.reduce(0, +)
        #expect(served > 0 && served < size * 3 / 2, "served \(served) bytes for a \(size)-byte binary")
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func fullDiskFailsCleanlyAndTheOldVersionRuns() async throws {
        let fleet = try await Fleet(hosts: [])
        defer { fleet.directory.remove() }
        // The host's data dir on a tmpfs with room for 1.0.0 and not for 1.1.0 too.
        let binarySize = try FileManager.default.attributesOfItem(atPath: Binaries.path("fledge-agent"))[.size] as! Int
        try FileManager.default.createDirectory(atPath: fleet.data, withIntermediateDirectories: true)
        let (_, _) = try await ChildProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(binarySize + binarySize / 2)", "tmpfs", fleet.data])
        defer { _ = try? ChildProcess.runBlocking("/bin/umount", ["-l", fleet.data]) }
        try FileManager.default.createDirectory(atPath: fleet.data + "/releases/1.0.0", withIntermediateDirectories: true)
        _ = try await ChildProcess.run(Binaries.path("fledge-seeder"), [
            "stamp", "--binary", Binaries.path("fledge-agent"), "--version", "1.0.0", "--out", fleet.data + "/releases/1.0.0/fledge-agent"])
        try FileManager.default.createSymbolicLink(atPath: fleet.data + "/current", withDestinationPath: fleet.data + "/releases/1.0.0")
        try await fleet.publish(version: "1.1.0", binary: try await fleet.stamped("1.1.0"))
        let stage = try await UpgradeTests.Stage(fleet)
        defer { stage.stop() }
        let (hbs, supervisor) = (stage.hbs, stage.supervisor)
        let id = try await stage.rollout("1.1.0")
        let summary = try await hbs.waitForRollout(id, phase: "paused", seconds: 30)
        let reason = ((summary?["failed"] as? [[String: Any]])?.first?["reason"] as? String) ?? ""
        #expect(reason.contains("no space left"), "\(reason) \(supervisor.stderr.suffix(1500))")
        #expect(fleet.current() == "1.0.0")
        #expect(try await UpgradeTests.agent(hbs)?["version"] as? String == "1.0.0", "the old version runs on")
        #expect(!FileManager.default.fileExists(atPath: fleet.data + "/releases/1.1.0"))
    }
}

