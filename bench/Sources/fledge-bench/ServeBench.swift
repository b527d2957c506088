import ArgumentParser
import Foundation
import ProcessHarness
import SystemPackage
import Transfer

/// `fledge-bench serve`: our range server vs nginx (sendfile) serving the same file to curl.
struct ServeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Our range server (RangeServer + DirectoryCatalog, in-process) vs nginx with sendfile, downloaded whole by curl clients.",
        discussion: """
            Both serve one random file from the same directory on 127.0.0.1. For each client count, \
            that many `curl -s -o /dev/null` processes start together; throughput is the total bytes \
            of all clients over the wall-clock time from the first start to the last exit. Servers \
            alternate which goes first from run to run. The JSON ratios are ours / nginx of the best runs.
            """)

    @OptionGroup var common: CommonOptions

    @Option(name: .customLong("clients"), help: "Parallel curl clients of one measurement; repeat the option for several.")
    var clients: [Int] = [1, 16]

    @Option(help: "Event loop threads of our server (default: one per core, like nginx's worker_processes auto).")
    var threads: Int?

    @Flag(inversion: .prefixedNo, help: "nginx's tcp_nopush (TCP_CORK with sendfile).")
    var nginxTcpNopush = true

    func validate() throws {
        if clients.isEmpty || clients.contains(where: { $0 <= 0 }) { throw ValidationError("--clients must be positive") }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive") }
    }

    /// One server under test: where to fetch from and how much CPU it has used so far.
    private struct Contender {
        let name: String
        let url: String
        let cpuSeconds: () -> Double
    }

    /// What one (server, clients) pair measured over the runs.
    private struct Result {
        var throughput = Samples()  // MB/s, all clients together
        var cpuPerGB = Samples()  // server CPU seconds per 10^9 bytes served
    }

    func run() async throws {
        try await Bench.run { try await measureAndReport() }
    }

    private func measureAndReport() async throws {
        let size = common.sizeBytes
        let results = try await Cleanup.shared.withTemporaryDirectory(in: common.workdir, label: "fledge-bench-serve") { directory in
            let root = try directory.makeDirectory("www")
            let file = root.appending("payload.bin")
            Bench.progress("writing \(Format.size(size)) of random bytes to \(file)")
            try RandomFile.write(file, size: size)

            var configuration = RangeServerConfiguration()
            configuration.host = Loopback.host
            configuration.port = 0
            configuration.maxUploadBytesPerSecond = nil
            configuration.maxConnections = 4096
            if let threads { configuration.threads = threads }
            let server = RangeServer(catalog: try DirectoryCatalog(root: root), configuration: configuration, logger: Bench.quietLogger)
            let port = try await server.start()
            do {
                let results = try await Nginx.with(root: root, prefix: directory.appending("nginx"), tcpNopush: nginxTcpNopush) { nginx in
                    let contenders = [
                        Contender(name: "fledge", url: "http://\(Loopback.host):\(port)/payload.bin", cpuSeconds: ProcFS.ownSeconds),
                        Contender(name: "nginx", url: "\(nginx.baseURL)/payload.bin", cpuSeconds: { nginx.cpuSeconds }),
                    ]
                    return try await measure(contenders, size: size)
                }
                try await server.shutdown()
                return results
            } catch {
                try? await server.shutdown()
                throw error
            }
        }
        report(results, size: size)
    }

    private func measure(_ contenders: [Contender], size: Int64) async throws -> [String: Result] {
        for contender in contenders {
            Bench.progress("warming up \(contender.name) (\(contender.url))")
            _ = try await CurlClients.download(url: contender.url, clients: 1, expectedSize: size, output: { _ in "/dev/null" })
        }
        var results: [String: Result] = [:]
        for run in 0..<common.repeats {
            for count in clients {
                for contender in run % 2 == 0 ? contenders : contenders.reversed() {
                    let cpuBefore = contender.cpuSeconds()
                    let seconds = try await CurlClients.download(
                        url: contender.url, clients: count, expectedSize: size, output: { _ in "/dev/null" })
                    let cpu = contender.cpuSeconds() - cpuBefore
                    let bytes = Int64(count) * size
                    let throughput = Bench.megabytesPerSecond(bytes: bytes, seconds: seconds)
                    results["\(contender.name)-\(count)", default: Result()].throughput.add(throughput)
                    results["\(contender.name)-\(count)", default: Result()].cpuPerGB.add(cpu / (Double(bytes) / 1e9))
                    Bench.progress("run \(run + 1)/\(common.repeats): \(contender.name), \(count) client(s): \(Format.fixed(throughput)) MB/s")
                }
            }
        }
        return results
    }

    private func report(_ results: [String: Result], size: Int64) {
        var table = Table(
            "serve: one \(Format.size(size)) file over 127.0.0.1 to curl clients, best and median of \(common.repeats) run(s)",
            columns: [("server", .left), ("clients", .right), ("best MB/s", .right), ("median MB/s", .right),
                      ("server CPU s/GB", .right), ("ratio (best)", .right)])
        var json = JSONLine(bench: "serve")
        json.add("size_mib", common.sizeMiB)
        json.add("repeat", common.repeats)
        json.add("statistic", "best")
        json.add("nginx_tcp_nopush", nginxTcpNopush ? "on" : "off")
        var absolutes: [(String, Double)] = []
        for count in clients {
            let ours = results["fledge-\(count)"] ?? Result(), nginx = results["nginx-\(count)"] ?? Result()
            let ratio = ours.throughput.best / nginx.throughput.best
            table.add(["fledge RangeServer", "\(count)", Format.fixed(ours.throughput.best), Format.fixed(ours.throughput.median),
                       Format.fixed(ours.cpuPerGB.median, 2), Format.ratio(ratio)])
            table.add(["nginx sendfile", "\(count)", Format.fixed(nginx.throughput.best), Format.fixed(nginx.throughput.median),
                       Format.fixed(nginx.cpuPerGB.median, 2), "1.000"])
            json.add("ratio_vs_nginx_\(count)", ratio)
            json.add("ratio_vs_nginx_\(count)_median", ours.throughput.median / nginx.throughput.median)
            absolutes += [("fledge_\(count)_mbps", ours.throughput.best), ("nginx_\(count)_mbps", nginx.throughput.best)]
        }
        for (key, value) in absolutes { json.add(key, value, digits: 1) }
        table.note("MB/s = 10^6 bytes per second, summed over all clients; ratio = fledge / nginx of the best runs (>= 1.0: ours is as fast).")
        table.note("Timing includes starting the curl processes (the same for both servers).")
        table.note("Server CPU s/GB (median): nginx master + workers from /proc; fledge is the whole bench process, so it also pays for spawning curl.")
        table.note("fledge: RangeServer, \(threads.map { "\($0)" } ?? "one per core") event loop thread(s), no upload cap, FileRegion (sendfile). nginx: worker_processes auto, sendfile on, tcp_nopush \(nginxTcpNopush ? "on" : "off"), access_log off.")
        table.print()
        print(json.text)
    }
}
