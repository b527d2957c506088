import Swarm
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

    /// One upload running: its size and when it started.
    private struct Running {
        let bytes: Int64
        let started: ContinuousClock.Instant
    }

    private struct State {
        var running: [Running] = []
        var waiting: [Waiter] = []
        var nextToken = 0
        /// Bytes per second one upload was seen to go at (a moving average), for hints when
        /// no cap says it.
        var observedRate: Double?
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
            if state.running.count < limit {
                state.running.append(Running(bytes: bytes, started: .now))
                return .granted
            }
            guard state.waiting.count < queueLimit else {
                return .refused(retryAfterMilliseconds: estimate(state))
            }
            let token = state.nextToken
            state.nextToken += 1
            state.waiting.append(Waiter(token: token, bytes: bytes, grant: grant))
            return .queued(token: token)
        }
    }

    /// How long until a slot is likely free (`UploadHint`), at the cap or the rate uploads
    /// were seen going at; with neither, a few milliseconds per upload ahead.
    private func estimate(_ state: State) -> Int {
        guard let rate = bytesPerSecond.map(Double.init) ?? state.observedRate, rate > 0 else {
            return min(5000, 5 * (state.running.count + state.waiting.count))
        }
        let now = ContinuousClock.now
        let remaining = state.running.map { Double($0.bytes) / rate - (now - $0.started).seconds }
        let queued = state.waiting.reduce(0.0) { $0 + Double($1.bytes) / rate }
        return Int((UploadHint.retryAfter(remaining: remaining, queued: queued, slots: limit) * 1000).rounded(.up))
    }

    /// A body of `bytes` ended (sent, cut, or never started): its slot goes to the first
    /// waiter, if any, or is free.
    func release(bytes: Int64) {
        let next: Waiter? = state.withLock { state in
            if let index = state.running.firstIndex(where: { $0.bytes == bytes }) {
                let ended = state.running.remove(at: index)
                let seconds = (ContinuousClock.now - ended.started).seconds
                if bytes >= 64 << 10, seconds > 0 {
                    let rate = Double(bytes) / seconds
                    state.observedRate = state.observedRate.map { 0.75 * $0 + 0.25 * rate } ?? rate
                }
            }
            guard !state.waiting.isEmpty else { return nil }
            let next = state.waiting.removeFirst()
            state.running.append(Running(bytes: next.bytes, started: .now))
            return next
        }
        next?.grant()
    }

    /// A queued request whose connection went away: it waits no more. True if it was still
    /// waiting (it holds no slot).
    @discardableResult
    func withdraw(_ token: Int) -> Bool {
        state.withLock { state in
            guard let index = state.waiting.firstIndex(where: { $0.token == token }) else { return false }
            state.waiting.remove(at: index)
            return true
        }
    }

    /// Uploads running and waiting, for tests and metrics.
    var counts: (active: Int, waiting: Int) { state.withLock { ($0.running.count, $0.waiting.count) } }
}
