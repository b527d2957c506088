import Foundation
import ProcessHarness
import SystemPackage

/// The wrk HTTP load generator (closed loop: `connections` keep-alive connections over
/// `threads` threads, each sending its next request as soon as the previous answer is in) as a
/// child process: one timed pass with `--latency`, its report parsed.
struct Wrk {
    /// What one pass reported.
    struct Report {
        var requestsPerSecond: Double
        /// The 99th percentile latency of the pass, in milliseconds.
        var p99Milliseconds: Double
        var requests: Int
        /// Bytes read from the server, headers included (wrk's figure, 1 KB = 1024 B).
        var bytesRead: Double
        /// Answers other than 2xx/3xx.
        var non2xx: Int
        /// connect + read + write errors and timeouts.
        var socketErrors: Int

        /// Average bytes of one answer, headers included.
        var bytesPerResponse: Double { requests > 0 ? bytesRead / Double(requests) : 0 }

        /// Passes run at once (at several servers), as one: rates and counts add up, the p99
        /// is the worst of them.
        static func together(_ reports: [Report]) -> Report {
            Report(
                requestsPerSecond: reports.map(\.requestsPerSecond).reduce(0, +), p99Milliseconds: reports.map(\.p99Milliseconds).max() ?? 0,
                requests: reports.map(\.requests).reduce(0, +), bytesRead: reports.map(\.bytesRead).reduce(0, +),
                non2xx: reports.map(\.non2xx).reduce(0, +), socketErrors: reports.map(\.socketErrors).reduce(0, +))
        }
    }

    let executable: String
    let threads: Int
    let connections: Int

    init(threads: Int, connections: Int) throws {
        executable = try Binaries.tool("wrk")
        self.threads = threads
        self.connections = connections
    }

    /// One pass of `seconds` against `url`, with the Lua `script` and its arguments when given.
    /// With `done`, the pass ends as soon as `done` holds (asked every 50 ms): wrk is
    /// interrupted (SIGINT), and reports what it did until then. Throws when wrk fails or its
    /// report cannot be read; errors in the answers are left to the caller.
    func run(
        url: String, seconds: Int, script: FilePath? = nil, scriptArguments: [String] = [], until done: (@Sendable () -> Bool)? = nil
    ) async throws -> Report {
        var arguments = ["-t", "\(threads)", "-c", "\(connections)", "-d", "\(seconds)s", "--latency", "--timeout", "5s"]
        if let script { arguments += ["-s", script.string] }
        arguments.append(url)
        if script != nil && !scriptArguments.isEmpty { arguments += ["--"] + scriptArguments }
        let child = try ChildProcess(executable, arguments)
        if let done {
            // wrk sets its SIGINT handler once its threads are started; before, SIGINT kills it.
            try? await Task.sleep(for: .milliseconds(250))
            while child.isRunning && !done() { try? await Task.sleep(for: .milliseconds(50)) }
            child.signal(SIGINT)
        }
        let exit = await child.wait(timeout: .seconds(seconds + 30))
        guard exit.succeeded else {
            throw BenchError.tool("wrk \(arguments.joined(separator: " ")): \(exit): \(child.stderr.prefix(500))")
        }
        do { return try Self.parse(child.stdout) } catch {
            throw BenchError.tool("\(error); wrk printed:\n\(child.stdout.prefix(2000))\(child.stderr.prefix(500))")
        }
    }

    /// Reads wrk's report: `Requests/sec:`, the `99%` line of the latency distribution,
    /// `N requests in Ts, B read`, and the error lines when present.
    static func parse(_ output: String) throws -> Report {
        var rate: Double?, p99: Double?, requests: Int?, bytes: Double?
        var non2xx = 0, socketErrors = 0
        for line in output.split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first == "Requests/sec:", fields.count >= 2 {
                rate = Double(fields[1])
            } else if first == "99%", fields.count >= 2 {
                p99 = milliseconds(fields[1])
            } else if fields.count >= 5, fields[1] == "requests", fields[2] == "in" {
                requests = Int(first)
                bytes = byteCount(fields[4])
            } else if line.contains("Non-2xx or 3xx responses:"), let last = fields.last {
                non2xx = Int(last) ?? 0
            } else if line.contains("Socket errors:") {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                socketErrors = fields.compactMap { Int($0.trimmingCharacters(in: [","])) }.reduce(0, +)
            }
        }
        guard let rate, let p99, let requests, let bytes else {
            throw BenchError.tool("cannot read wrk's report (Requests/sec, the 99% latency, the request count)")
        }
        return Report(requestsPerSecond: rate, p99Milliseconds: p99, requests: requests, bytesRead: bytes,
                      non2xx: non2xx, socketErrors: socketErrors)
    }

    /// wrk's durations: `850.00us`, `1.23ms`, `2.01s`, `1.50m`, `1.00h`.
    static func milliseconds(_ text: Substring) -> Double? {
        let units: [(String, Double)] = [("us", 1e-3), ("ms", 1), ("s", 1e3), ("m", 60e3), ("h", 3600e3)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)) { return value * scale }
        }
        return nil
    }

    /// wrk's sizes: `512.00B`, `1.23KB`, `45.67MB`, `1.02GB` (binary multiples).
    static func byteCount(_ text: Substring) -> Double? {
        let units: [(String, Double)] = [("KB", 0x1p10), ("MB", 0x1p20), ("GB", 0x1p30), ("TB", 0x1p40), ("B", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)) { return value * scale }
        }
        return nil
    }
}
