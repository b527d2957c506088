import Synchronization
import Wire

/// What the agent reports about itself, shared by the heartbeat loop, the upgrader and the
/// metrics endpoint.
public final class AgentStatus: Sendable {
    public struct Snapshot: Sendable {
        public var state: AgentState = .idle
        public var rolloutId: String?
        public var progressBytes: Int64?
        public var downloadedFrom: [String: Int64]?
        public var error: String?
        public var held: [HeldRelease] = []
        public var beats = 0
        public var beatFailures = 0
        public var ordersRefused: [String: Int] = [:]
    }

    private let snapshot = Mutex(Snapshot())

    public init() {}

    public var current: Snapshot { snapshot.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) { snapshot.withLock { body(&$0) } }

    /// Fledge's own metrics, next to the process ones.
    public func prometheusText(version: String) -> String {
        let now = current
        var lines = [
            "# HELP fledge_agent_version_info The version this agent runs.", "# TYPE fledge_agent_version_info gauge",
            "fledge_agent_version_info{version=\"\(version)\"} 1",
            "# HELP fledge_agent_upgrade_state The upgrade state (1 for the current one).", "# TYPE fledge_agent_upgrade_state gauge",
        ]
        lines += AgentState.allCases.map { "fledge_agent_upgrade_state{state=\"\($0.rawValue)\"} \($0 == now.state ? 1 : 0)" }
        lines += [
            "# HELP fledge_agent_heartbeats_total Heartbeats answered by HBS.", "# TYPE fledge_agent_heartbeats_total counter",
            "fledge_agent_heartbeats_total \(now.beats)",
            "# HELP fledge_agent_heartbeat_failures_total Heartbeats no HBS answered.", "# TYPE fledge_agent_heartbeat_failures_total counter",
            "fledge_agent_heartbeat_failures_total \(now.beatFailures)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
