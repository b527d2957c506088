import Foundation
import SystemPackage

/// Plain nginx serving one directory on a free 127.0.0.1 port with `sendfile on`: the
/// reference server the benches measure ours against, and the plain static-file origin that
/// falcon-style rollouts download from. A child process with a prefix (config, pid file, temp
/// paths) of its own; its workers are listed in `RunningChildren` too.
public final class Nginx: Sendable {
    public let port: Int
    public let master: ChildProcess
    public let workers: [Int32]

    private init(port: Int, master: ChildProcess, workers: [Int32]) {
        self.port = port
        self.master = master
        self.workers = workers
    }

    public var baseURL: String { "http://\(Loopback.host):\(port)" }

    /// CPU seconds used so far by the master and its workers.
    public var cpuSeconds: Double { ([master.pid] + workers).map(ProcFS.seconds(of:)).reduce(0, +) }

    /// Runs `body` with nginx serving `root`; nginx is stopped however `body` ends.
    public static func with<T>(
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

    /// Starts nginx serving `root`, with its own files under `prefix` (created if missing), and
    /// returns once it accepts connections and all its workers (one per core) are up.
    /// `tcpNopush` sets `tcp_nopush` (TCP_CORK with sendfile).
    public static func start(root: FilePath, prefix: FilePath, tcpNopush: Bool = true) async throws -> Nginx {
        let executable = try Binaries.tool("nginx")
        do {
            try FileManager.default.createDirectory(
                atPath: prefix.string, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw HarnessError("cannot create \(prefix): \(error)")
        }
        let conf = prefix.appending("nginx.conf")
        let (master, port) = try await LoopbackServer.start("nginx") { port in
            do {
                try configuration(port: port, root: root, prefix: prefix, tcpNopush: tcpNopush)
                    .write(toFile: conf.string, atomically: true, encoding: .utf8)
            } catch {
                throw HarnessError("cannot write \(conf): \(error)")
            }
            return try ChildProcess(executable, ["-p", prefix.string + "/", "-c", conf.string, "-e", "stderr"])
        }
        // Workers come up right after the listen socket; wait for all of them.
        var workers: [Int32] = []
        let expected = ProcessInfo.processInfo.activeProcessorCount
        await ChildProcess.waitFor(seconds: 10) {
            workers = ProcFS.children(of: master.pid)
            return workers.count >= expected
        }
        for worker in workers { RunningChildren.shared.track(pid: worker, name: "nginx worker") }
        return Nginx(port: port, master: master, workers: workers)
    }

    /// Fast shutdown (SIGTERM: the master stops its workers), SIGKILL for anything left after 5 s.
    public func stop() async {
        await master.stop(grace: .seconds(5))
        for worker in workers {
            if kill(worker, 0) == 0, ProcFS.commandName(of: worker) == "nginx" {
                // A worker outlived its master (it was killed hard): end it too.
                kill(worker, SIGKILL)
            }
            RunningChildren.shared.untrack(pid: worker)
        }
    }

    /// The minimal config: static files with sendfile, no access log, everything under `prefix`.
    public static func configuration(port: Int, root: FilePath, prefix: FilePath, tcpNopush: Bool = true) -> String {
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
