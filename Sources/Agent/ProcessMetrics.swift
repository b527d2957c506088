import Glibc

/// The process metrics Prometheus' client_golang exports by default, read from /proc:
/// CPU seconds, open and max file descriptors, resident and virtual memory, start time.
public struct ProcessMetrics: Sendable, Equatable {
    public var cpuSeconds: Double
    public var openFDs: Int
    public var maxFDs: Int
    public var residentBytes: Int
    public var virtualBytes: Int
    public var startTimeSeconds: Double

    /// Reads this process's figures; nil where /proc is missing (not Linux).
    public static func current() -> ProcessMetrics? {
        guard let stat = read("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3; utime 14, stime 15, starttime 22, vsize 23, rss 24.
        let fields = stat[stat.index(after: close)...].split(separator: " ").map(String.init)
        func field(_ number: Int) -> Double { Double(fields[number - 3]) ?? 0 }
        guard fields.count >= 22 else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bootTime = read("/proc/stat")?.split(separator: "\n").first { $0.hasPrefix("btime ") }
            .flatMap { Double($0.dropFirst(6)) } ?? 0
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessMetrics(
            cpuSeconds: (field(14) + field(15)) / ticks,
            openFDs: countEntries("/proc/self/fd"),
            maxFDs: Int(limit.rlim_cur),
            residentBytes: Int(field(24)) * page,
            virtualBytes: Int(field(23)),
            startTimeSeconds: bootTime + field(22) / ticks)
    }

    /// The Prometheus text lines, with HELP and TYPE as client_golang writes them.
    public var prometheusText: String {
        [
            ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", "\(cpuSeconds)"),
            ("process_open_fds", "gauge", "Number of open file descriptors.", "\(openFDs)"),
            ("process_max_fds", "gauge", "Maximum number of open file descriptors.", "\(maxFDs)"),
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "\(residentBytes)"),
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "\(virtualBytes)"),
            ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", "\(startTimeSeconds)"),
        ].map { "# HELP \($0.0) \($0.2)\n# TYPE \($0.0) \($0.1)\n\($0.0) \($0.3)\n" }.joined()
    }

    private static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func countEntries(_ path: String) -> Int {
        guard let directory = opendir(path) else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return max(0, count - 1)  // the directory handle this count holds open
    }
}
