import Synchronization

/// Bodies a server sends at once, under a limit shared by every connection, with a short queue:
/// a request that finds every slot taken waits for the next free one if the queue has room (so
/// the uplink goes on without a round trip's gap), and is otherwise refused at once with when
/// to come back, computed from what is ahead of it. A swarm asks many holders; a busy one
/// saying "in 40 ms" beats a fixed back-off.
final class UploadSlots: Sendable {
    /// What became of a request for a slot.
    enum Admission: Equatable {
        /// A slot is the caller's now.
        case granted
        /// Queued: `grant` runs when a slot is the caller's; `token` withdraws it.
        case queued(token: Int)
        /// Busy: come back in about this many milliseconds.
        case refused(retryAfterMilliseconds: Int)
    }

    let limit: Int
    /// Requests that may wait, over all slots.
    let queueLimit: Int
    /// The server's upload cap (bytes per second), for the estimate; nil: none.
    let bytesPerSecond: Int64?
    private let state = Mutex(State())

    private struct Waiter {
        let token: Int
        let bytes: Int64
        let grant: @Sendable () -> Void
    }

    private struct State {
        var active = 0
        /// Body bytes of the uploads running and waiting.
        var pendingBytes: Int64 = 0
        var waiting: [Waiter] = []
        var nextToken = 0
    }

    init(limit: Int, queuePerSlot: Int, bytesPerSecond: Int64?) {
        self.limit = max(1, limit)
        queueLimit = max(0, queuePerSlot) * self.limit
        self.bytesPerSecond = bytesPerSecond
    }

    /// Asks for a slot for a body of `bytes`. `grant` runs (on some thread) if the request is
    /// queued and its slot comes; it must then send the body, or `release` the slot.
    func take(bytes: Int64, grant: @escaping @Sendable () -> Void) -> Admission {
        state.withLock { state in
            if state.active < limit {
                state.active += 1
                state.pendingBytes += bytes
                return .granted
            }
            guard state.waiting.count < queueLimit else {
                return .refused(retryAfterMilliseconds: estimate(pendingBytes: state.pendingBytes, uploads: state.active + state.waiting.count))
            }
            let token = state.nextToken
            state.nextToken += 1
            state.waiting.append(Waiter(token: token, bytes: bytes, grant: grant))
            state.pendingBytes += bytes
            return .queued(token: token)
        }
    }

    /// How long until a slot is likely free: everything ahead sent at the cap (or, with no cap,
    /// a few milliseconds per upload ahead), at least 5 ms, at most 5 s.
    private func estimate(pendingBytes: Int64, uploads: Int) -> Int {
        let milliseconds = bytesPerSecond.map { Int(pendingBytes * 1000 / max(1, $0) / Int64(limit)) } ?? 5 * uploads
        return min(5000, max(5, milliseconds))
    }

    /// A body of `bytes` ended (sent, cut, or never started): its slot goes to the first
    /// waiter, if any, or is free.
    func release(bytes: Int64) {
        let next: Waiter? = state.withLock { state in
            state.pendingBytes -= bytes
            if state.waiting.isEmpty {
                state.active -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.grant()
    }

    /// A queued request whose connection went away: it waits no more. True if it was still
    /// waiting (it holds no slot).
    @discardableResult
    func withdraw(_ token: Int) -> Bool {
        state.withLock { state in
            guard let index = state.waiting.firstIndex(where: { $0.token == token }) else { return false }
            state.pendingBytes -= state.waiting[index].bytes
            state.waiting.remove(at: index)
            return true
        }
    }

    /// Uploads running and waiting, for tests and metrics.
    var counts: (active: Int, waiting: Int) { state.withLock { ($0.active, $0.waiting.count) } }
}
