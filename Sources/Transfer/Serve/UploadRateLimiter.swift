import Synchronization

/// A total upload cap shared by every connection of a server: each chunk reserves its bytes
/// and is told how long to wait before sending them, so the sum stays at the configured rate.
public final class UploadRateLimiter: Sendable {
    public let bytesPerSecond: Int64
    /// The moment the link is next free, in nanoseconds of `ContinuousClock`.
    private let nextFree = Mutex<ContinuousClock.Instant>(.now)

    public init(bytesPerSecond: Int64) {
        precondition(bytesPerSecond > 0, "an upload cap must be positive")
        self.bytesPerSecond = bytesPerSecond
    }

    /// A chunk size that keeps pacing smooth at this rate: about 20 chunks a second.
    public var chunkSize: Int { Int(min(256 * 1024, max(4 * 1024, bytesPerSecond / 20))) }

    /// Reserves `bytes`; returns how long to wait before sending them.
    public func reserve(_ bytes: Int) -> Duration {
        let cost = Duration.nanoseconds(Int64(bytes) * 1_000_000_000 / bytesPerSecond)
        let now = ContinuousClock.now
        let start: ContinuousClock.Instant = nextFree.withLock { next in
            let start = max(next, now)
            next = start + cost
            return start
        }
        return start - now
    }
}
