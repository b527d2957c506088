import Foundation
import Logging
import SystemPackage

/// Why a bench could not measure.
enum BenchError: Error, CustomStringConvertible {
    case tool(String)
    case io(String)
    case check(String)

    var description: String {
        switch self {
        case .tool(let message): message
        case .io(let message): message
        case .check(let message): message
        }
    }
}

/// Process-wide set-up and reporting shared by the benches.
enum Bench {
    /// Logs to stderr (stdout carries only the table and the JSON line), cleanup on signals.
    private static func prepare() {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        Cleanup.shared.installSignalHandlers()
    }

    /// Runs a bench body. An error caused by a signal's teardown (children killed under it) is
    /// not reported: the signal handler is about to exit with 128 + signal.
    static func run(_ body: () async throws -> Void) async throws {
        prepare()
        do {
            try await body()
        } catch where Cleanup.shared.isStopping {
            try? await Task.sleep(for: .seconds(30))
            throw error
        }
    }

    /// A quiet logger for the code under test: its per-request lines would cost time and noise.
    static var quietLogger: Logger {
        var logger = Logger(label: "fledge-bench")
        logger.logLevel = .warning
        return logger
    }

    /// A progress line on stderr.
    static func progress(_ message: String) {
        FileHandle.standardError.write(Data("fledge-bench: \(message)\n".utf8))
    }

    /// Seconds `body` took on the monotonic clock.
    static func seconds(_ body: () async throws -> Void) async rethrows -> Double {
        let start = ContinuousClock.now
        try await body()
        return (ContinuousClock.now - start).seconds
    }

    /// Decimal megabytes (10^6 bytes) per second.
    static func megabytesPerSecond(bytes: Int64, seconds: Double) -> Double {
        seconds > 0 ? Double(bytes) / seconds / 1e6 : 0
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The measurements of one thing over several runs. Higher is better (throughputs).
struct Samples {
    private(set) var values: [Double] = []

    mutating func add(_ value: Double) { values.append(value) }

    var best: Double { values.max() ?? 0 }

    var median: Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted(), middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// Formats numbers for tables.
enum Format {
    static func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
    static func ratio(_ value: Double) -> String { String(format: "%.3f", value) }

    static func size(_ bytes: Int64) -> String {
        if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) B"
    }
}

/// A temporary directory under /tmp (or a chosen work directory), removed when the body ends,
/// however it ends. World-traversable, so a server running as another user can read it.
enum TemporaryDirectory {
    static func with<T>(in workdir: String?, label: String, _ body: (FilePath) async throws -> T) async throws -> T {
        let base = workdir ?? "/tmp"
        var template = Array("\(base)/fledge-bench-\(label)-XXXXXX".utf8CString)
        let path: String = try template.withUnsafeMutableBufferPointer { buffer in
            guard let created = mkdtemp(buffer.baseAddress!) else {
                throw BenchError.io("cannot create a temporary directory in \(base): \(String(cString: strerror(errno)))")
            }
            return String(cString: created)
        }
        Cleanup.shared.track(directory: path)
        defer {
            try? FileManager.default.removeItem(atPath: path)
            Cleanup.shared.untrack(directory: path)
        }
        chmod(path, 0o755)
        return try await body(FilePath(path))
    }

    /// Creates a world-readable directory (and its parents).
    static func makeDirectory(_ path: FilePath) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path.string, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw BenchError.io("cannot create \(path): \(error)")
        }
    }

    static func remove(_ path: FilePath) { try? FileManager.default.removeItem(atPath: path.string) }
}

/// The test payload: incompressible pseudo-random bytes (SplitMix64), world-readable.
enum TestFile {
    static func write(_ path: FilePath, size: Int64, seed: UInt64 = 0x5EED_F1ED_9E00_0001) throws {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                path, .writeOnly, options: [.create, .truncate], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw BenchError.io("cannot create \(path): \(error)")
        }
        defer { try? fd.close() }
        let chunk = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        let words = buffer.bindMemory(to: UInt64.self)
        var state = seed
        var written: Int64 = 0
        while written < size {
            for index in words.indices {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                words[index] = z ^ (z >> 31)
            }
            let count = Int(min(Int64(chunk), size - written))
            do {
                _ = try fd.writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            } catch {
                throw BenchError.io("cannot write \(path): \(error)")
            }
            written += Int64(count)
        }
        fchmod(fd.rawValue, 0o644)
    }
}

/// The one JSON object a bench prints as its last line, keys in the order they were added.
struct JSONLine {
    private var fields: [(String, String)] = []

    init(bench: String) { add("bench", bench) }

    mutating func add(_ key: String, _ value: String) { fields.append((key, Self.quote(value))) }
    mutating func add(_ key: String, _ value: Int) { fields.append((key, "\(value)")) }
    /// Rounded to `digits` decimals; non-finite numbers become null.
    mutating func add(_ key: String, _ value: Double, digits: Int = 3) {
        guard value.isFinite else { fields.append((key, "null")); return }
        fields.append((key, String(format: "%.\(digits)f", value)))
    }

    var text: String { "{" + fields.map { "\(Self.quote($0.0)):\($0.1)" }.joined(separator: ",") + "}" }

    private static func quote(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Processes as /proc (Linux) shows them: CPU time, children, names.
enum ProcFS {
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// User + system seconds of this process, all threads.
    static func ownSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    /// User + system seconds of `pid` (0 if it is gone).
    static func seconds(of pid: Int32) -> Double {
        guard let fields = statFields(pid), fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / ticksPerSecond
    }

    /// The direct children of `pid`.
    static func children(of pid: Int32) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter { child in
            guard let fields = statFields(child), fields.count > 1 else { return false }
            return Int32(fields[1]) == pid
        }
    }

    /// The command name of `pid` (at most 15 characters), nil if it is gone.
    static func commandName(of pid: Int32) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/comm") else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The fields of /proc/PID/stat after the command name: state, ppid, ... (field 3 onward).
    private static func statFields(_ pid: Int32) -> [Substring]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }
}
