import Synchronization

/// The heartbeat loop's promise of its next sign of life. Before each step that may block (a
/// beat, a pause, waiting on an upgrade) the loop says by when it will be back; the watchdog
/// pings the service manager only while that promise holds, so a loop stuck anywhere (not only
/// a frozen process) stops the pings and the manager stops the agent.
public final class Liveness: Sendable {
    private let deadline = Mutex<ContinuousClock.Instant?>(nil)
    /// Slack on every promise: scheduling, a slow disk.
    static let slack: Duration = .seconds(5)

    public init() {}

    /// The loop will show life again within `duration`.
    public func promise(within duration: Duration) {
        deadline.withLock { $0 = .now + duration + Self.slack }
    }

    /// True while the last promise holds (or none was made yet: the loop is starting).
    public var isAlive: Bool { deadline.withLock { $0.map { ContinuousClock.now <= $0 } ?? true } }
}
