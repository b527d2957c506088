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
        /// Sources the current download gave up on, with why (logged); and those given up on
        /// for misbehaving, which beats report so HBS stops handing them out.
        public var droppedSources: [SourceFailure] = []
        public var reportedSources: [SourceFailure] = []
        public var beats = 0
        public var beatFailures = 0
        /// Upgrades that failed, by kind of reason (refused, download, disk, self-test, install).
        public var failures: [String: Int] = [:]
        /// Verified bytes fetched, by source URL, over every upgrade since start.
        public var downloadedTotal: [String: Int64] = [:]
        /// The release `DATA/current` names, when not the binary's version (falcon config-only).
        public var release: String?
        /// When this process started (unix seconds), and starts of this version on this host.
        public var startedAt: Int64 = 0
        public var starts = 0
    }

    private let snapshot = Mutex(Snapshot())

    public init() {}

    public var current: Snapshot { snapshot.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) { snapshot.withLock { body(&$0) } }

    /// Fledge's own metrics, next to the process ones. `servedBytes`: what the peer server sent.
    public func prometheusText(version: String, servedBytes: Int64 = 0) -> String {
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
            "# HELP fledge_agent_peer_served_bytes_total Bytes sent to peers.", "# TYPE fledge_agent_peer_served_bytes_total counter",
            "fledge_agent_peer_served_bytes_total \(servedBytes)",
            "# HELP fledge_agent_downloaded_bytes_total Verified bytes fetched, by source.",
            "# TYPE fledge_agent_downloaded_bytes_total counter",
        ]
        lines += now.downloadedTotal.sorted { $0.key < $1.key }.map { "fledge_agent_downloaded_bytes_total{source=\"\($0.key)\"} \($0.value)" }
        lines += ["# HELP fledge_agent_upgrade_failures_total Upgrades that failed, by reason.", "# TYPE fledge_agent_upgrade_failures_total counter"]
        lines += now.failures.sorted { $0.key < $1.key }.map { "fledge_agent_upgrade_failures_total{reason=\"\($0.key)\"} \($0.value)" }
        return lines.joined(separator: "\n") + "\n"
    }
}
