import Foundation
import ProcessHarness

/// What one process used while something ran: its resident memory sampled once a second
/// (VmRSS from /proc/PID/status) and its CPU time (utime + stime from /proc/PID/stat) from the
/// start to the end.
struct ResourceUsage {
    var rssSamples: [Int64]
    var cpuSeconds: Double
    var wallSeconds: Double

    var meanRSSMB: Double { rssSamples.isEmpty ? 0 : Double(rssSamples.reduce(0, +)) / Double(rssSamples.count) / 1e6 }
    var maxRSSMB: Double { Double(rssSamples.max() ?? 0) / 1e6 }
    /// CPU time over wall time, in percent of one core.
    var cpuPercent: Double { wallSeconds > 0 ? cpuSeconds / wallSeconds * 100 : 0 }
}

/// Samples one process from /proc while a body runs.
enum ResourceSampler {
    /// Resident set size of `pid` in bytes (VmRSS), nil if it is gone.
    static func rssBytes(of pid: Int32) -> Int64? { statusBytes(of: pid, "VmRSS") }

    /// A kB field of /proc/PID/status in bytes (`VmRSS`, `RssAnon`, `RssFile`), nil if absent.
    static func statusBytes(of pid: Int32, _ field: String) -> Int64? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/status") else { return nil }
        let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first { $0.hasPrefix(field + ":") }
        guard let kilobytes = line?.split(separator: " ").dropFirst().first.flatMap({ Int64($0) }) else { return nil }
        return kilobytes * 1024
    }

    /// Runs `body`, sampling `pid`'s RSS at its start and then once a second until it ends;
    /// CPU and wall time are taken around it.
    static func measure<T>(pid: Int32, during body: () async throws -> T) async throws -> (ResourceUsage, T) {
        let sampler = Task<[Int64], Never> {
            var samples: [Int64] = []
            while !Task.isCancelled {
                if let rss = rssBytes(of: pid) { samples.append(rss) }
                do { try await Task.sleep(for: .seconds(1)) } catch { break }
            }
            return samples
        }
        let cpuStart = ProcFS.seconds(of: pid), start = ContinuousClock.now
        let result: T
        do {
            result = try await body()
        } catch {
            sampler.cancel()
            throw error
        }
        let wall = (ContinuousClock.now - start).seconds, cpu = ProcFS.seconds(of: pid) - cpuStart
        sampler.cancel()
        let samples = await sampler.value
        guard !samples.isEmpty else { throw BenchError.check("process \(pid) vanished while it was measured") }
        return (ResourceUsage(rssSamples: samples, cpuSeconds: cpu, wallSeconds: wall), result)
    }
}
