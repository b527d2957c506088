import Foundation
import Logging
import ProcessHarness

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
        Cleanup.shared.installSignalHandlers(program: "fledge-bench")
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

    /// The CPU model, as /proc/cpuinfo names it ("unknown" if it does not).
    static var cpuModel: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("model name") }
        let model = line?.split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces)
        return model.flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
    }

    /// Decimal megabytes (10^6 bytes) per second.
    static func megabytesPerSecond(bytes: Int64, seconds: Double) -> Double {
        seconds > 0 ? Double(bytes) / seconds / 1e6 : 0
    }
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

/// The one JSON object a bench prints as its last line, keys in the order they were added.
struct JSONLine {
    private var fields: [(String, String)] = []

    init(bench: String) { add("bench", bench) }

    mutating func add(_ key: String, _ value: String) { fields.append((key, Self.quote(value))) }
    mutating func add(_ key: String, _ value: Int) { fields.append((key, "\(value)")) }
    mutating func add(_ key: String, _ value: Bool) { fields.append((key, value ? "true" : "false")) }
    /// A value that is JSON already (a nested object).
    mutating func add(_ key: String, raw json: String) { fields.append((key, json)) }
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
