import Synchronization

/// Wakes heartbeats that wait (long-poll) for something to do: fired when a rollout starts
/// or resumes, so idle agents beating every minute still get their orders within moments. The
/// hosts that can be admitted now (the current batch) are woken first: with a fleet waiting,
/// their beats reach the control plane ahead of the rest, so the first batch has its orders
/// first instead of somewhere among 100,000 answers.
public final class RolloutSignal: Sendable {
    private struct Waiter {
        let host: String?
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct Waiters {
        var next = 0
        var waiting: [Int: Waiter] = [:]
    }

    private let waiters = Mutex(Waiters())

    public init() {}

    /// Beats waiting now.
    public var waiting: Int { waiters.withLock { $0.waiting.count } }

    /// Wakes every waiter, those of `first` before the others.
    public func fire(first: Set<String> = []) {
        let woken = waiters.withLock { waiters in
            defer { waiters.waiting = [:] }
            return Array(waiters.waiting.values)
        }
        let early = woken.filter { $0.host.map(first.contains) ?? false }
        let late = woken.filter { !($0.host.map(first.contains) ?? false) }
        for waiter in early + late { waiter.continuation.resume(returning: true) }
    }

    /// Returns true when fired within `timeout`, false when the time ran out (or the task was
    /// cancelled). `host`: who waits, so a rollout's first batch can be woken first.
    public func wait(upTo timeout: Duration, host: String? = nil) async -> Bool {
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
                            waiters.waiting[id] = Waiter(host: host, continuation: continuation)
                            return true
                        }
                        if !registered { continuation.resume(returning: false) }
                    }
                } onCancel: {
                    let waiter = self.waiters.withLock { $0.waiting.removeValue(forKey: id) }
                    waiter?.continuation.resume(returning: false)
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
