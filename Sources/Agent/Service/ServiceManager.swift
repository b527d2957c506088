import CLinux
import Glibc

/// The agent's side of systemd's notify protocol (sd_notify(3)), which `scripts/supervise`
/// speaks too: `READY=1` once the agent runs (a release on trial: once HBS answered it), and
/// `WATCHDOG=1` while its heartbeat loop is alive, so the manager itself stops a release that
/// never gets ready or hangs. Started by hand (no `$NOTIFY_SOCKET`), it says nothing.
public struct ServiceManager: Sendable {
    let socket: String?
    /// How often the manager wants `WATCHDOG=1` (`$WATCHDOG_USEC`), when it watches at all.
    public let watchdogInterval: Duration?

    public init(socket: String?, watchdogMicroseconds: Int64?) {
        self.socket = socket.flatMap { $0.isEmpty ? nil : $0 }
        watchdogInterval = watchdogMicroseconds.flatMap { $0 > 0 ? .microseconds($0) : nil }
    }

    /// From the environment the manager started this process with.
    public static func fromEnvironment() -> ServiceManager {
        let variable = { (name: String) in getenv(name).map { String(cString: $0) } }
        return ServiceManager(socket: variable("NOTIFY_SOCKET"), watchdogMicroseconds: variable("WATCHDOG_USEC").flatMap { Int64($0) })
    }

    /// The agent runs (and, on trial, HBS answered it).
    public func ready(_ status: String) { send("READY=1\nSTATUS=\(status)") }

    /// The heartbeat loop is alive.
    public func watchdog() { send("WATCHDOG=1") }

    /// A clean stop has begun.
    public func stopping() { send("STOPPING=1") }

    /// Sends one datagram; a manager that went away is no reason to stop the agent.
    @discardableResult
    func send(_ message: String) -> Bool {
        guard let socket else { return false }
        return fledge_notify(socket, message) == 0
    }
}
