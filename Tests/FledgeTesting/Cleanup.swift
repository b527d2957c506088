import Dispatch
import Foundation
import Synchronization
import SystemPackage

/// The policy of the benches and the demo for the way out nobody returns from, SIGINT and
/// SIGTERM: stop every child process and what it started (`RunningChildren`), remove every
/// temporary directory in use, and exit 128 + signal. Each run stops and removes its own on
/// the way out otherwise (errors included).
public final class Cleanup: Sendable {
    public static let shared = Cleanup()

    private let directories = Mutex<Set<String>>([])
    private let stopping = Atomic<Bool>(false)

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

    /// Stops every running child and removes every tracked directory.
    public func stopEverything() {
        stopping.store(true, ordering: .releasing)
        RunningChildren.shared.stopAll(grace: .milliseconds(500))
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
