import Foundation
import ProcessHarness
import SystemPackage

/// nginx as the reference for a capped peer: FledgeTesting's minimal config (`sendfile on`,
/// no access log) with one worker process and `limit_rate` set to the agent's upload cap
/// (per connection; with one client, the same as the agent's total cap).
final class CappedNginx: Sendable {
    let master: ChildProcess
    let worker: Int32
    let port: Int

    private init(master: ChildProcess, worker: Int32, port: Int) {
        self.master = master
        self.worker = worker
        self.port = port
    }

    var baseURL: String { "http://\(Loopback.host):\(port)" }

    /// Starts it serving `root`, its own files under `prefix`; returns once it listens and its
    /// worker is up.
    static func start(root: FilePath, prefix: FilePath, rate: Int64) async throws -> CappedNginx {
        let executable = try Binaries.tool("nginx")
        try FileManager.default.createDirectory(
            atPath: prefix.string, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let conf = prefix.appending("nginx.conf")
        let (master, port) = try await LoopbackServer.start("nginx") { port in
            try configuration(port: port, root: root, prefix: prefix, rate: rate)
                .write(toFile: conf.string, atomically: true, encoding: .utf8)
            return try ChildProcess(executable, ["-p", prefix.string + "/", "-c", conf.string, "-e", "stderr"])
        }
        var workers: [Int32] = []
        await ChildProcess.waitFor(seconds: 10) {
            workers = ProcFS.children(of: master.pid)
            return !workers.isEmpty
        }
        guard workers.count == 1, let worker = workers.first else {
            await master.stop(grace: .seconds(5))
            throw BenchError.check("nginx: expected one worker, found \(workers.count)")
        }
        RunningChildren.shared.track(pid: worker, name: "nginx worker")
        return CappedNginx(master: master, worker: worker, port: port)
    }

    /// The helper's config with `worker_processes 1` and `limit_rate RATE` (bytes per second).
    static func configuration(port: Int, root: FilePath, prefix: FilePath, rate: Int64) throws -> String {
        let base = Nginx.configuration(port: port, root: root, prefix: prefix, tcpNopush: true)
        guard base.contains("worker_processes auto;"), base.contains("sendfile on;") else {
            throw BenchError.check("nginx: FledgeTesting's config changed; update CappedNginx")
        }
        return base
            .replacingOccurrences(of: "worker_processes auto;", with: "worker_processes 1;")
            .replacingOccurrences(of: "sendfile on;", with: "sendfile on;\n    limit_rate \(rate);")
    }

    /// SIGTERM to the master (it stops the worker), SIGKILL for anything left after 5 s.
    func stop() async {
        await master.stop(grace: .seconds(5))
        if kill(worker, 0) == 0, ProcFS.commandName(of: worker) == "nginx" { kill(worker, SIGKILL) }
        RunningChildren.shared.untrack(pid: worker)
    }
}
