import Foundation
import Synchronization

/// A real process started by a test or a bench (a seeder, nginx, curl, openssl), so the code
/// under test meets real processes, sockets and signals. Its standard output and error are
/// captured and readable at any time; waiting is async; it is listed in `RunningChildren` while
/// it runs, and killed if it is still running when the last reference goes.
public final class ChildProcess: Sendable {
    /// How a finished child ended.
    public struct Exit: Sendable, Equatable, CustomStringConvertible {
        /// The exit status, or the signal number when `bySignal`.
        public var status: Int32
        public var bySignal: Bool

        /// Ended by itself with `status`.
        public static func exited(_ status: Int32) -> Exit { Exit(status: status, bySignal: false) }
        /// Ended by signal `number`.
        public static func killed(by number: Int32) -> Exit { Exit(status: number, bySignal: true) }

        public var succeeded: Bool { self == .exited(0) }
        public var description: String { bySignal ? "killed by signal \(status)" : "exit status \(status)" }
    }

    public let name: String
    public let pid: Int32
    /// Kept for the child's life: it holds the output handles and the termination handler.
    private let process: Process
    private let exitState: ExitState
    private let output: CapturedOutput
    private let errors: CapturedOutput

    /// Starts `executable` (a path, or the name of a product of this package, found by
    /// `Binaries`) with `arguments`, standard input from /dev/null.
    /// `environment` is added to this process's own. `name` names it (default: the
    /// executable's file name).
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], name: String? = nil) throws {
        let path = executable.contains("/") ? executable : Binaries.path(executable)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let output = try CapturedOutput(), errors = try CapturedOutput()
        process.standardOutput = output.writer
        process.standardError = errors.writer
        let exitState = ExitState()
        process.terminationHandler = { finished in
            exitState.finish(Exit(status: finished.terminationStatus, bySignal: finished.terminationReason == .uncaughtSignal))
            RunningChildren.shared.untrack(pid: finished.processIdentifier)
        }
        do {
            try Self.withUnblockedSignals { try process.run() }
        } catch {
            throw HarnessError("cannot start \(path): \(error)")
        }
        self.name = name ?? URL(fileURLWithPath: path).lastPathComponent
        self.pid = process.processIdentifier
        self.process = process
        self.exitState = exitState
        self.output = output
        self.errors = errors
        RunningChildren.shared.track(pid: pid, name: self.name)
        // The termination handler may have run before the line above: never leave a dead pid
        // listed (it could be reused by another process, which a signal handler would then kill).
        if exitState.exit != nil { RunningChildren.shared.untrack(pid: pid) }
    }

    /// Starts `executable` (as `init` finds it) with `arguments` inside the network namespace
    /// `namespace` (`ip netns exec NAMESPACE EXECUTABLE ...`, which needs root). `ip` execs the
    /// program, so the child's pid, signals and exit are the program's own.
    public static func inNamespace(
        _ namespace: String, _ executable: String, _ arguments: [String], environment: [String: String] = [:]
    ) throws -> ChildProcess {
        let path = executable.contains("/") ? executable : Binaries.path(executable)
        return try ChildProcess(
            try Binaries.tool("ip"), ["netns", "exec", namespace, path] + arguments, environment: environment,
            name: URL(fileURLWithPath: path).lastPathComponent)
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

    public var isRunning: Bool { exitState.exit == nil }

    /// How it ended; nil while it runs.
    public var exit: Exit? { exitState.exit }

    /// Its standard output so far.
    public var stdout: String { output.text }

    /// Its standard error so far.
    public var stderr: String { errors.text }

    /// Sends signal `number`, if it still runs; does not wait.
    public func signal(_ number: Int32) {
        if isRunning { Foundation.kill(pid, number) }
    }

    /// Waits for it to end by itself.
    @discardableResult
    public func wait() async -> Exit {
        await exitState.wait()
    }

    /// Waits for it to end by itself, at most `timeout`; past that it is killed (SIGKILL).
    /// Returns how it ended either way.
    @discardableResult
    public func wait(timeout: Duration) async -> Exit {
        await Self.waitFor(seconds: timeout.seconds) { !isRunning }
        signal(SIGKILL)
        return await wait()
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`; returns once it has ended.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) async -> Exit {
        signal(SIGTERM)
        return await wait(timeout: grace)
    }

    /// SIGKILL, and returns once it has ended. Blocks the calling thread for that moment, so it
    /// works in `defer`; the exit is reported on Foundation's own thread, never a task's.
    @discardableResult
    public func kill() -> Exit {
        signal(SIGKILL)
        while true {
            if let exit = exitState.exit { return exit }
            usleep(1000)
        }
    }

    /// Polls `condition` until it holds, at most `seconds`, sleeping (not blocking) in between.
    /// Returns whether it held.
    @discardableResult
    public static func waitFor(seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    /// Runs `executable` to its end; throws unless it exits 0. Returns its output.
    public static func run(_ executable: String, _ arguments: [String]) async throws -> (stdout: String, stderr: String) {
        let child = try ChildProcess(executable, arguments)
        let exit = await child.wait()
        guard exit.succeeded else {
            throw HarnessError("\(executable) \(arguments.joined(separator: " ")): \(exit): \(child.stderr.prefix(500))")
        }
        return (child.stdout, child.stderr)
    }

    /// Runs a short command to its end on the calling thread (setup, and `defer`, where no
    /// `await` is allowed): how it ended and what it printed.
    @discardableResult
    public static func runBlocking(_ executable: String, _ arguments: [String]) throws -> (exit: Exit, stdout: String) {
        let child = try ChildProcess(executable, arguments)
        while child.exit == nil { usleep(1000) }
        return (child.exit!, child.stdout)
    }

    deinit { signal(SIGKILL) }
}

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
