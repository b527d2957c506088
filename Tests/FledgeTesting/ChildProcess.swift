import Foundation

/// A real process started by a test (a seeder, later HBS and agents), with its output captured
/// to files so a test can read it while it runs, and stopped for sure when the test is done.
public final class ChildProcess: @unchecked Sendable {  // Process is thread-safe for what is used here
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
    public func wait(seconds: Double = 60) async -> Int32 {
        await Self.waitFor(seconds: seconds) { !process.isRunning }
        if process.isRunning { kill() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Polls until `condition` holds, at most `seconds`, sleeping (not blocking) in between.
    @discardableResult
    public static func waitFor(seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
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

/// `fledge-seeder serve` as a real process on a free loopback port.
public final class SeederProcess: Sendable {
    public let child: ChildProcess
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(child: ChildProcess, port: Int) {
        self.child = child
        self.port = port
    }

    /// Starts it and waits until it accepts connections.
    public static func start(root: String, rate: Int64? = nil, extra: [String] = []) async throws -> SeederProcess {
        let port = FreePort.next()
        var arguments = ["serve", "--root", root, "--listen", "127.0.0.1:\(port)", "--threads", "1"]
        if let rate { arguments += ["--rate", "\(rate)"] }
        let child = try ChildProcess("fledge-seeder", arguments + extra)
        guard await FreePort.waitUntilListening(port) else {
            child.kill()
            throw ChildProcessError.notListening(port: port, stderr: child.stderr)
        }
        return SeederProcess(child: child, port: port)
    }

    public func kill() { child.kill() }
}

public enum ChildProcessError: Error {
    case notListening(port: Int, stderr: String)
}
