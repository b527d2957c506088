import Dispatch
import Foundation
import Synchronization
import SystemPackage

/// The policy of the benches and the demo for the way out nobody returns from, SIGINT and
/// SIGTERM: stop every child process and what it started (`RunningChildren`), undo whatever
/// else a run set up outside its process (`addTeardown`: a namespaced fleet's bridge, network
/// namespaces and links), remove every temporary directory in use, and exit 128 + signal. Each
/// run stops and removes its own on the way out otherwise (errors included).
public final class Cleanup: Sendable {
    public static let shared = Cleanup()

    /// What `addTeardown` returns, to remove the teardown again once its owner has run it.
    public struct TeardownID: Hashable, Sendable {
        fileprivate let value: Int
    }

    private let directories = Mutex<Set<String>>([])
    private let teardowns = Mutex<(next: Int, actions: [Int: @Sendable () -> Void])>((0, [:]))
    private let stopping = Atomic<Bool>(false)

    /// Lists `action` to run on a signal, after every child has stopped (so nothing runs in
    /// what it removes) and before the directories go. It blocks until its work is done, and
    /// must not mind running again, or after its owner ran it: the signal may come at any
    /// moment of the owner's own set-up or teardown.
    public func addTeardown(_ action: @escaping @Sendable () -> Void) -> TeardownID {
        teardowns.withLock { state in
            state.next += 1
            state.actions[state.next] = action
            return TeardownID(value: state.next)
        }
    }

    /// Forgets a teardown (its owner ran it).
    public func removeTeardown(_ id: TeardownID) {
        _ = teardowns.withLock { $0.actions.removeValue(forKey: id.value) }
    }

    /// Whether a signal handler is tearing everything down (and will exit the process).
    public var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Runs `body` with a fresh temporary directory in `workdir` (default /tmp), removed when
    /// `body` ends or on a signal.
    /// `label` names it (`fledge-bench-agent-XXXXXX`).
    public func withTemporaryDirectory<T>(in workdir: String?, label: String, _ body: (TemporaryDirectory) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory(label, in: workdir)
        _ = directories.withLock { $0.insert(directory.string) }
        defer {
            // Listed until it is gone: a signal arriving mid-removal finishes the job.
            directory.remove()
            _ = directories.withLock { $0.remove(directory.string) }
        }
        return try await body(directory)
    }

    /// Stops every running child, runs every listed teardown and removes every tracked
    /// directory.
    public func stopEverything() {
        stopping.store(true, ordering: .releasing)
        RunningChildren.shared.stopAll(grace: .milliseconds(500))
        let actions = teardowns.withLock { state in
            defer { state.actions = [:] }
            return state.actions.sorted { $0.key > $1.key }.map(\.value)
        }
        for action in actions { action() }
        let paths = directories.withLock { directories in
            defer { directories = [] }
            return directories
        }
        for path in paths {
            // The bench's own clean-up may be removing it at the same moment (its children just
            // died under it), and removeItem gives up at the first entry the other one took:
            // try until it is gone, since exit follows and nobody else will finish the job.
            let deadline = ContinuousClock.now + .seconds(10)
            while FileManager.default.fileExists(atPath: path) && ContinuousClock.now < deadline {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
    }

    /// On SIGINT or SIGTERM: stop children, remove directories, exit 128 + signal. `program`
    /// names the process in the line it prints.
    public func installSignalHandlers(program: String) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("\(program): signal \(signalNumber), cleaning up\n".utf8))
                Cleanup.shared.stopEverything()
                exit(128 + signalNumber)
            }
            source.resume()
            signalSources.append(source)
        }
    }
}

/// Kept alive for the life of the process; written once, at start-up, before any task runs.
nonisolated(unsafe) private var signalSources: [any DispatchSourceSignal] = []
