import Rollouts
import Synchronization

/// HBS's own counters, exported on `/metrics` with gauges read from the state.
public final class HBSMetrics: Sendable {
    let heartbeats = Atomic<Int>(0)
    let orders = Atomic<Int>(0)
    let storeErrors = Atomic<Int>(0)
    /// Beats refused for a wrong credential or for speaking for another host.
    let rejectedBeats = Atomic<Int>(0)
    /// The shared store, when there is one: its reachability and failures are exported.
    let redis: RedisStore?

    public init(redis: RedisStore? = nil) { self.redis = redis }

    func render(_ state: FleetState) -> String {
        var lines = [
            "# HELP hbs_heartbeats_total Heartbeats received.", "# TYPE hbs_heartbeats_total counter",
            "hbs_heartbeats_total \(heartbeats.load(ordering: .relaxed))",
            "# HELP hbs_orders_total Upgrade orders sent.", "# TYPE hbs_orders_total counter",
            "hbs_orders_total \(orders.load(ordering: .relaxed))",
            "# HELP hbs_store_errors_total Changes the store could not make durable.", "# TYPE hbs_store_errors_total counter",
            "hbs_store_errors_total \(storeErrors.load(ordering: .relaxed))",
            "# HELP hbs_rejected_beats_total Beats refused: a wrong credential, or speaking for another host.",
            "# TYPE hbs_rejected_beats_total counter",
            "hbs_rejected_beats_total \(rejectedBeats.load(ordering: .relaxed))",
            "# HELP hbs_agents Agents known.", "# TYPE hbs_agents gauge", "hbs_agents \(state.agents.count)",
            "# HELP hbs_rollout_hosts Hosts of the active rollout by phase.", "# TYPE hbs_rollout_hosts gauge",
        ]
        if let redis {
            lines += [
                "# HELP hbs_redis_up Whether Redis answered just now.", "# TYPE hbs_redis_up gauge",
                "hbs_redis_up \(redis.isReachable ? 1 : 0)",
                "# HELP hbs_redis_errors_total Redis calls that failed.", "# TYPE hbs_redis_errors_total counter",
                "hbs_redis_errors_total \(redis.failures)",
            ]
        }
        if let rollout = state.activeRollout {
            let counts = Dictionary(rollout.hosts.values.map { ($0.phase.rawValue, 1) }, uniquingKeysWith: +)
            for phase in HostPhase.allCases {
                lines.append("hbs_rollout_hosts{rollout=\"\(rollout.id)\",phase=\"\(phase.rawValue)\"} \(counts[phase.rawValue, default: 0])")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
