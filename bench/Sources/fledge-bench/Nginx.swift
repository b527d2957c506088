import Foundation
import SystemPackage

/// nginx serving one directory on a free loopback port with `sendfile on`, as a child process
/// with a prefix (config, pid file, temp paths) of its own. Stopped by `stop()`, or by
/// `Cleanup` on a signal.
final class Nginx: Sendable {
    let port: Int
    let master: ChildProcess
    let workers: [Int32]

    private init(port: Int, master: ChildProcess, workers: [Int32]) {
        self.port = port
        self.master = master
        self.workers = workers
    }

    var baseURL: String { "http://\(Loopback.host):\(port)" }

    /// CPU seconds used so far by the master and its workers.
    var cpuSeconds: Double { ([master.pid] + workers).map(ProcFS.seconds(of:)).reduce(0, +) }

    /// Runs `body` with nginx serving `root`; nginx is stopped however `body` ends.
    static func with<T>(
        root: FilePath, prefix: FilePath, tcpNopush: Bool = true, _ body: (Nginx) async throws -> T
    ) async throws -> T {
        let nginx = try await start(root: root, prefix: prefix, tcpNopush: tcpNopush)
        do {
            let result = try await body(nginx)
            await nginx.stop()
            return result
        } catch {
            await nginx.stop()
            throw error
        }
    }

    /// Starts nginx on a free port; a port taken between probing and binding gets another try.
    static func start(root: FilePath, prefix: FilePath, tcpNopush: Bool = true) async throws -> Nginx {
        let executable = try Tools.path(of: "nginx")
        try TemporaryDirectory.makeDirectory(prefix)
        var lastError = ""
        for _ in 0..<5 {
            let port = try Loopback.freePort()
            let conf = prefix.appending("nginx.conf")
            do {
                try configuration(port: port, root: root, prefix: prefix, tcpNopush: tcpNopush).write(toFile: conf.string, atomically: true, encoding: .utf8)
            } catch {
                throw BenchError.io("cannot write \(conf): \(error)")
            }
            let master = try ChildProcess(
                executable, ["-p", prefix.string + "/", "-c", conf.string, "-e", "stderr"],
                stderr: prefix.appending("stderr.log").string)
            let deadline = ContinuousClock.now + .seconds(10)
            while master.isRunning && !Loopback.accepts(port: port) && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if master.isRunning && Loopback.accepts(port: port) {
                // Workers come up right after the listen socket; wait for all of them.
                var workers = ProcFS.children(of: master.pid)
                let expected = ProcessInfo.processInfo.activeProcessorCount
                while workers.count < expected && ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(20))
                    workers = ProcFS.children(of: master.pid)
                }
                for worker in workers { Cleanup.shared.track(pid: worker, name: "nginx worker") }
                return Nginx(port: port, master: master, workers: workers)
            }
            await master.stop(grace: .seconds(2))
            lastError = master.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        throw BenchError.tool("nginx did not start: \(lastError.suffix(800))")
    }

    /// Fast shutdown (SIGTERM: the master stops its workers), SIGKILL for anything left after 5 s.
    func stop() async {
        await master.stop(grace: .seconds(5))
        for worker in workers {
            if kill(worker, 0) == 0, ProcFS.commandName(of: worker) == "nginx" {
                // A worker outlived its master (it was killed hard): end it too.
                kill(worker, SIGKILL)
            }
            Cleanup.shared.untrack(pid: worker)
        }
    }

    /// The minimal config: static files with sendfile, no access log, everything under `prefix`.
    static func configuration(port: Int, root: FilePath, prefix: FilePath, tcpNopush: Bool = true) -> String {
        let temp = prefix.string
        return """
            daemon off;
            master_process on;
            worker_processes auto;
            error_log stderr;
            pid \(temp)/nginx.pid;
            \(geteuid() == 0 ? "user root;" : "")
            events {}
            http {
                sendfile on;
                tcp_nopush \(tcpNopush ? "on" : "off");
                access_log off;
                default_type application/octet-stream;
                client_body_temp_path \(temp)/client_body;
                proxy_temp_path \(temp)/proxy;
                fastcgi_temp_path \(temp)/fastcgi;
                uwsgi_temp_path \(temp)/uwsgi;
                scgi_temp_path \(temp)/scgi;
                server {
                    listen \(Loopback.host):\(port);
                    root \(root.string);
                }
            }

            """
    }
}
