import Dispatch
import Foundation
import Synchronization

/// What a run leaves behind while it works: child processes and temporary directories. Each
/// bench stops and removes its own on the way out (errors included); this registry is for the
/// way out nobody returns from, SIGINT and SIGTERM.
final class Cleanup: Sendable {
    static let shared = Cleanup()

    private struct State {
        var processes: [Int32: String] = [:]
        var directories: Set<String> = []
    }

    private let state = Mutex(State())
    private let stopping = Atomic<Bool>(false)

    /// Whether a signal handler is tearing everything down (and will exit the process).
    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    func track(pid: Int32, name: String) { state.withLock { $0.processes[pid] = name } }
    func untrack(pid: Int32) { _ = state.withLock { $0.processes.removeValue(forKey: pid) } }
    func track(directory: String) { _ = state.withLock { $0.directories.insert(directory) } }
    func untrack(directory: String) { _ = state.withLock { $0.directories.remove(directory) } }

    /// Stops every tracked child (SIGTERM, SIGKILL for the ones still there a moment later) and
    /// removes every tracked directory.
    func stopEverything() {
        stopping.store(true, ordering: .releasing)
        let (pids, directories) = state.withLock { state in
            defer { state = State() }
            return (Array(state.processes.keys), Array(state.directories))
        }
        for pid in pids { kill(pid, SIGTERM) }
        if !pids.isEmpty { usleep(500_000) }
        for pid in pids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// On SIGINT or SIGTERM: stop children, remove directories, exit 128 + signal.
    func installSignalHandlers() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("fledge-bench: signal \(signalNumber), cleaning up\n".utf8))
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
