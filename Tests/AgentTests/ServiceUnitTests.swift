import Foundation
import FledgeTesting
import Glibc
import Testing
@testable import Agent

/// The units in deploy/ as systemd reads them, what a release's unit must keep, the deadline
/// every child process runs under, and the notify datagrams the agent sends.
@Suite struct ServiceUnitTests {
    /// `systemd-analyze verify` on both units, in a root holding systemd's own units and the
    /// executables they name (this machine runs no systemd and has neither at those paths).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "make test installs systemd (systemd-analyze)"))
    func bothUnitsPassSystemdAnalyzeVerify() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let root = directory.string
        let files = FileManager.default
        for path in ["/usr/lib/fledge/fledge-guard", "/var/lib/fledge-agent/current/fledge-agent", "/usr/bin/fledge-hbs"] {
            try files.createDirectory(atPath: root + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try "#!/bin/sh\n".write(toFile: root + path, atomically: true, encoding: .utf8)
            chmod(root + path, 0o755)
        }
        try files.createDirectory(atPath: root + "/lib/systemd", withIntermediateDirectories: true)
        try files.copyItem(atPath: "/lib/systemd/system", toPath: root + "/lib/systemd/system")
        try files.createDirectory(atPath: root + "/etc/systemd/system", withIntermediateDirectories: true)
        for unit in ["fledge-agent.service", "fledge-hbs.service"] {
            try files.copyItem(atPath: Binaries.deployFile(unit), toPath: root + "/etc/systemd/system/" + unit)
            let child = try ChildProcess("/usr/bin/systemd-analyze", ["verify", "--root=\(root)", "/etc/systemd/system/\(unit)"])
            let exit = await child.wait()
            #expect(exit.succeeded && child.stdout.isEmpty && child.stderr.isEmpty, "\(unit): \(exit) \(child.stdout) \(child.stderr)")
        }
    }

    @Test func theDeployedUnitKeepsWhatAnInstallNeeds() throws {
        let unit = try String(contentsOfFile: Binaries.deployFile("fledge-agent.service"), encoding: .utf8)
        #expect(UnitFileCheck.problems(in: unit).isEmpty)
    }

    @Test(arguments: [
        ("ExecStartPre=/usr/lib/fledge/fledge-guard /var/lib/fledge-agent\n", "", "must run fledge-guard"),
        ("Type=notify\n", "Type=simple\n", "Type= must be notify"),
        ("ExecStart=/var/lib/fledge-agent/current/fledge-agent", "ExecStart=fledge-agent", "absolute path"),
        ("[Service]\n", "[Servic]\n", "no [Service] section"),
    ])
    func aUnitThatLosesAGuaranteeIsRefused(remove: String, put: String, problem: String) throws {
        let unit = try String(contentsOfFile: Binaries.deployFile("fledge-agent.service"), encoding: .utf8)
        let broken = unit.replacingOccurrences(of: remove, with: put)
        #expect(broken != unit)
        let problems = UnitFileCheck.problems(in: broken)
        #expect(problems.contains { $0.contains(problem) }, "\(problems)")
    }

    /// A child that closes its output and then hangs (and one that forks a hanging grandchild)
    /// is killed at the deadline, with its process group.
    @Test func aChildThatClosesItsOutputAndHangsIsKilled() throws {
        let started = ContinuousClock.now
        let outcome = try Subprocess.run("/bin/sh", ["-c", "echo bye; exec >&- 2>&-; sleep 30"], timeout: .seconds(1))
        #expect(outcome.timedOut)
        #expect(outcome.output.contains("bye"))
        #expect(ContinuousClock.now - started < .seconds(10))

        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("fledge-grandchild-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        let forked = try Subprocess.run("/bin/sh", ["-c", "sleep 30 & echo $! > \(pidFile); wait"], timeout: .seconds(1))
        #expect(forked.timedOut)
        let grandchild = Int32((try String(contentsOfFile: pidFile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        usleep(100_000)
        // Gone, or a zombie waiting for whoever reaps orphans here.
        let stat = try? String(contentsOfFile: "/proc/\(grandchild)/stat", encoding: .utf8)
        #expect(grandchild > 0 && (stat == nil || stat!.contains(") Z ")), "the grandchild went with its group: \(stat ?? "")")
    }

    @Test func aQuickChildReportsItsStatusAndOutput() throws {
        let outcome = try Subprocess.run("/bin/sh", ["-c", "echo one; echo two >&2; exit 3"])
        #expect(outcome.status == 3 && !outcome.timedOut)
        #expect(outcome.lastLines == "one / two")
    }

    /// READY=1 and WATCHDOG=1 arrive as datagrams on the manager's socket, as sd_notify sends them.
    @Test func theAgentSpeaksTheNotifyProtocol() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.string + "/notify"
        let server = try LoopbackDatagramSocket(path: path)
        defer { server.close() }
        let manager = ServiceManager(socket: path, watchdogMicroseconds: 3_000_000)
        #expect(manager.watchdogInterval == .seconds(3))
        manager.ready("running 1.0.0")
        manager.watchdog()
        #expect(server.receive() == "READY=1\nSTATUS=running 1.0.0")
        #expect(server.receive() == "WATCHDOG=1")
        #expect(!ServiceManager(socket: nil, watchdogMicroseconds: nil).send("READY=1"), "no manager: nothing sent")
    }

    @Test func livenessHoldsOnlyWhileItsPromiseDoes() {
        let liveness = Liveness()
        #expect(liveness.isAlive, "alive while starting")
        liveness.promise(within: .seconds(-10))
        #expect(!liveness.isAlive, "a promise past its time (slack included) is broken")
        liveness.promise(within: .seconds(1))
        #expect(liveness.isAlive)
    }
}

/// A Unix datagram socket bound at a path: the service manager's end, for the test.
final class LoopbackDatagramSocket {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw HarnessError("bind \(path): errno \(errno)") }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
    }

    func close() { Glibc.close(fd) }
}
