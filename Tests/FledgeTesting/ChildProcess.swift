import Foundation

/// A real process started by a test (a seeder, later HBS and agents), with its output captured
/// to files so a test can read it while it runs, and stopped for sure when the test is done.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let stdoutPath: String
    public let stderrPath: String
    public let name: String

    /// Starts `executable` (a path, or a product name found by `Binaries`) with `arguments`.
    public init(_ executable: String, _ arguments: [String], logDirectory: String = NSTemporaryDirectory()) throws {
        let path = executable.contains("/") ? executable : Binaries.path(executable)
        name = (path as NSString).lastPathComponent
        let stamp = UUID().uuidString.prefix(8)
        stdoutPath = "\(logDirectory)/\(name)-\(stamp).out"
        stderrPath = "\(logDirectory)/\(name)-\(stamp).err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` (SIGKILL by default) and waits for the process to end.
    public func kill(_ signal: Int32 = SIGKILL) {
        if process.isRunning { Foundation.kill(process.processIdentifier, signal) }
        process.waitUntilExit()
    }

    /// Waits for the process to exit by itself, at most `seconds`; kills it past that.
    @discardableResult
    public func wait(seconds: Double = 60) -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Polls until `condition` holds, at most `seconds`. Returns whether it held.
    @discardableResult
    public static func waitFor(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    deinit { if process.isRunning { kill() } }
}

/// Finds the executables this package builds, next to the running test bundle.
public enum Binaries {
    public static var directory: String {
        if let override = ProcessInfo.processInfo.environment["FLEDGE_BIN_DIR"] { return override }
        // The test runner lives in .build/<config>/ beside the products (inside an .xctest on
        // some platforms); walk up until the products are found.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("fledge-seeder").path) { return url.path }
            url.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug").path
    }

    public static func path(_ product: String) -> String { "\(directory)/\(product)" }
}
