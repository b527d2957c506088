import Synchronization

/// HBS's own counters, exported on `/metrics` with gauges read from the state.
public final class HBSMetrics: Sendable {
    let heartbeats = Atomic<Int>(0)
    let orders = Atomic<Int>(0)
    let storeErrors = Atomic<Int>(0)

    public init() {}

    func render(_ state: FleetState) -> String {
        var lines = [
            "# HELP hbs_heartbeats_total Heartbeats received.", "# TYPE hbs_heartbeats_total counter",
            "hbs_heartbeats_total \(heartbeats.load(ordering: .relaxed))",
            "# HELP hbs_orders_total Upgrade orders sent.", "# TYPE hbs_orders_total counter",
            "hbs_orders_total \(orders.load(ordering: .relaxed))",
            "# HELP hbs_store_errors_total Changes the store could not make durable.", "# TYPE hbs_store_errors_total counter",
            "hbs_store_errors_total \(storeErrors.load(ordering: .relaxed))",
            "# HELP hbs_agents Agents known.", "# TYPE hbs_agents gauge", "hbs_agents \(state.agents.count)",
            "# HELP hbs_rollout_hosts Hosts of the active rollout by phase.", "# TYPE hbs_rollout_hosts gauge",
        ]
        if let rollout = state.activeRollout {
            let counts = Dictionary(rollout.hosts.values.map { ($0.phase.rawValue, 1) }, uniquingKeysWith: +)
            for phase in HostPhase.allCases {
                lines.append("hbs_rollout_hosts{rollout=\"\(rollout.id)\",phase=\"\(phase.rawValue)\"} \(counts[phase.rawValue, default: 0])")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
