import Synchronization

/// Wakes heartbeats that wait (long-poll) for something to do: fired when a rollout starts
/// or resumes, so idle agents beating every minute still get their orders within moments.
public final class RolloutSignal: Sendable {
    private struct Waiters {
        var next = 0
        var continuations: [Int: CheckedContinuation<Bool, Never>] = [:]
    }

    private let waiters = Mutex(Waiters())

    public init() {}

    /// Wakes every waiter.
    public func fire() {
        let woken = waiters.withLock { waiters in
            defer { waiters.continuations = [:] }
            return Array(waiters.continuations.values)
        }
        for continuation in woken { continuation.resume(returning: true) }
    }

    /// Returns true when fired within `timeout`, false when the time ran out (or the task was
    /// cancelled).
    public func wait(upTo timeout: Duration) async -> Bool {
        let id = waiters.withLock { waiters in
            defer { waiters.next += 1 }
            return waiters.next
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let registered = self.waiters.withLock { waiters -> Bool in
                            guard !Task.isCancelled else { return false }
                            waiters.continuations[id] = continuation
                            return true
                        }
                        if !registered { continuation.resume(returning: false) }
                    }
                } onCancel: {
                    let continuation = self.waiters.withLock { $0.continuations.removeValue(forKey: id) }
                    continuation?.resume(returning: false)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}
