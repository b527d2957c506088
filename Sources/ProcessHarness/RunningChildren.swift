import Foundation
import Synchronization

/// Every child process this process has running, by pid: `ChildProcess` lists itself while it
/// runs, and helpers add processes they did not start themselves (nginx's workers). It exists
/// for the way out nobody returns from: a bench's SIGINT/SIGTERM handler stops them all with
/// `stopAll`, so no server or client outlives the run.
public final class RunningChildren: Sendable {
    public static let shared = RunningChildren()

    private let children = Mutex<[Int32: String]>([:])

    /// Lists `pid` under `name`.
    public func track(pid: Int32, name: String) { children.withLock { $0[pid] = name } }

    /// Forgets `pid` (it ended, or whoever started it stopped it).
    public func untrack(pid: Int32) { _ = children.withLock { $0.removeValue(forKey: pid) } }

    /// The processes listed right now: pid to name.
    public var current: [Int32: String] { children.withLock { $0 } }

    /// Forgets every listed process and stops it and everything it started (a supervisor's
    /// agent): SIGTERM, then SIGKILL for any still there after `grace`. Blocks the calling
    /// thread (up to `grace`), so it can run in a signal handler's dispatch source or on the way
    /// to `exit`, where no task will be awaited.
    public func stopAll(grace: Duration = .milliseconds(500)) {
        let listed = children.withLock { children in
            defer { children = [:] }
            return Array(children.keys)
        }
        guard !listed.isEmpty else { return }
        // Descendants first, read while their parents still live (see ProcFS.descendants).
        let pids = listed.flatMap { ProcFS.descendants(of: $0) } + listed
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, pids.contains(where: { kill($0, 0) == 0 }) { usleep(10_000) }
        for pid in pids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }
}
