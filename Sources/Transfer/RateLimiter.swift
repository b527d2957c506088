import Swarm
import Synchronization

/// A byte rate shared by many transfers: a server's upload cap over all its connections (each
/// chunk waits its turn), or a downloader's cap over all its pieces (each piece starts in turn).
public final class RateLimiter: Sendable {
    public let bytesPerSecond: Int64
    /// The moment the link is next free, in nanoseconds of `ContinuousClock`.
    private let nextFree = Mutex<ContinuousClock.Instant>(.now)

    public init(bytesPerSecond: Int64) {
        precondition(bytesPerSecond > 0, "a rate cap must be positive")
        self.bytesPerSecond = bytesPerSecond
    }

    /// For work that can only start or not (a piece request): `.zero` when it may start now,
    /// its bytes counted; otherwise how long until it may, nothing counted.
    public func admit(_ bytes: Int) -> Duration {
        let cost = Duration.nanoseconds(Int64(bytes) * 1_000_000_000 / bytesPerSecond)
        let now = ContinuousClock.now
        return nextFree.withLock { next in
            if next > now { return next - now }
            next = max(next, now - slack) + cost
            return .zero
        }
    }

    /// Gives back what an admitted piece did not use (refused, busy, cut short): a peer's 429
    /// must not cost a host half a second of its downlink.
    public func refund(_ bytes: Int) {
        guard bytes > 0 else { return }
        let cost = Duration.nanoseconds(Int64(bytes) * 1_000_000_000 / bytesPerSecond)
        let now = ContinuousClock.now
        nextFree.withLock { next in next = max(now - slack, next - cost) }
    }

    /// How long until the next piece may start: what a fresh look at the sources must beat.
    public var delay: Duration {
        let now = ContinuousClock.now
        return nextFree.withLock { $0 > now ? $0 - now : .zero }
    }

    /// How far the schedule may lag `now`: one chunk's worth.
    private var slack: Duration { .nanoseconds(Int64(chunkSize) * 1_000_000_000 / bytesPerSecond) }

    /// A chunk size that keeps pacing smooth at this rate (`RatePacing`).
    public var chunkSize: Int { RatePacing.chunkBytes(bytesPerSecond: Double(bytesPerSecond)) }

    /// Reserves `bytes`; returns how long to wait before sending them. A chunk goes out when
    /// the link would have finished carrying it, so no window ever sees more than the cap.
    public func reserve(_ bytes: Int) -> Duration {
        let cost = Duration.nanoseconds(Int64(bytes) * 1_000_000_000 / bytesPerSecond)
        let now = ContinuousClock.now
        // A chunk sent late (a busy event loop, a slow write) may be made up for, by at most
        // one chunk's worth: the link's schedule lags `now` by up to that, no more.
        let slack = self.slack
        let due: ContinuousClock.Instant = nextFree.withLock { next in
            next = max(next, now - slack) + cost
            return next
        }
        return due - now
    }
}
