import Foundation
import Synchronization

/// A child process started with Foundation's `Process`, its standard output and error going to
/// files (or nowhere). Waiting is async; the process is tracked for `Cleanup` while it runs.
final class ChildProcess: Sendable {
    /// How a finished child ended.
    struct Exit: Sendable, CustomStringConvertible {
        var status: Int32
        var bySignal: Bool
        var succeeded: Bool { status == 0 && !bySignal }
        var description: String { bySignal ? "killed by signal \(status)" : "exit status \(status)" }
    }

    let name: String
    let pid: Int32
    let stdoutPath: String?
    let stderrPath: String?
    private let process: Process
    private let exitState: ExitState

    /// Starts `executable` with `arguments`; output to the given files (created or truncated),
    /// or discarded when nil.
    init(_ executable: String, _ arguments: [String], stdout stdoutPath: String? = nil, stderr stderrPath: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try Self.handle(writingTo: stdoutPath)
        process.standardError = try Self.handle(writingTo: stderrPath)
        let exitState = ExitState()
        process.terminationHandler = { finished in
            Cleanup.shared.untrack(pid: finished.processIdentifier)
            exitState.finish(Exit(status: finished.terminationStatus, bySignal: finished.terminationReason == .uncaughtSignal))
        }
        do {
            try Self.withUnblockedSignals { try process.run() }
        } catch {
            throw BenchError.tool("cannot start \(executable): \(error)")
        }
        self.name = URL(fileURLWithPath: executable).lastPathComponent
        self.pid = process.processIdentifier
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.process = process
        self.exitState = exitState
        Cleanup.shared.track(pid: pid, name: name)
    }

    /// Runs `body` with no signal blocked on this thread. Process spawns on the calling thread
    /// and the child inherits its signal mask; Swift's task and dispatch threads block nearly
    /// every signal, which would leave the child deaf to SIGTERM and `openssl speed` waiting
    /// forever for its SIGALRM.
    private static func withUnblockedSignals<T>(_ body: () throws -> T) rethrows -> T {
        var none = sigset_t(), saved = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        return try body()
    }

    private static func handle(writingTo path: String?) throws -> FileHandle {
        guard let path else { return FileHandle.nullDevice }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw BenchError.io("cannot create \(path)")
        }
        return handle
    }

    var isRunning: Bool { exitState.exit == nil }

    /// Waits for the child to end.
    @discardableResult
    func wait() async -> Exit {
        let exit = await exitState.wait()
        Cleanup.shared.untrack(pid: pid)
        return exit
    }

    func send(_ signalNumber: Int32) {
        if isRunning { kill(pid, signalNumber) }
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`; returns once it has ended.
    @discardableResult
    func stop(grace: Duration = .seconds(5)) async -> Exit {
        send(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        send(SIGKILL)
        return await wait()
    }

    var standardOutput: String { Self.read(stdoutPath) }
    var standardError: String { Self.read(stderrPath) }

    private static func read(_ path: String?) -> String {
        guard let path, let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Runs a child to its end; throws unless it exits 0. Output files go in `directory`.
    static func run(_ executable: String, _ arguments: [String], outputIn directory: String) async throws -> (stdout: String, stderr: String) {
        let id = nextOutputID.add(1, ordering: .relaxed).newValue
        let child = try ChildProcess(
            executable, arguments, stdout: "\(directory)/child-\(id).out", stderr: "\(directory)/child-\(id).err")
        let exit = await child.wait()
        defer {
            for path in [child.stdoutPath, child.stderrPath].compactMap({ $0 }) { unlink(path) }
        }
        guard exit.succeeded else {
            throw BenchError.tool("\(executable) \(arguments.joined(separator: " ")): \(exit): \(child.standardError.prefix(500))")
        }
        return (child.standardOutput, child.standardError)
    }
}

private let nextOutputID = Atomic<Int>(0)

/// A child's exit, once known, and the tasks waiting for it.
private final class ExitState: Sendable {
    private struct State {
        var exit: ChildProcess.Exit?
        var waiters: [CheckedContinuation<ChildProcess.Exit, Never>] = []
    }

    private let state = Mutex(State())

    var exit: ChildProcess.Exit? { state.withLock { $0.exit } }

    func finish(_ exit: ChildProcess.Exit) {
        let waiters = state.withLock { state in
            state.exit = exit
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: exit) }
    }

    func wait() async -> ChildProcess.Exit {
        await withCheckedContinuation { continuation in
            let exit: ChildProcess.Exit? = state.withLock { state in
                if let exit = state.exit { return exit }
                state.waiters.append(continuation)
                return nil
            }
            if let exit { continuation.resume(returning: exit) }
        }
    }
}

/// Finds the command-line tools the benches compare against.
enum Tools {
    static func path(of name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw BenchError.tool("\(name) not found in PATH or the sbin directories; install it (apt-get install \(name == "nginx" ? "nginx-light" : name))")
    }
}
