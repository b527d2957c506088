import Metrics
import Prometheus
import Rollouts
import Synchronization

/// What HBS exports on `/metrics`, through swift-metrics into a swift-prometheus registry of
/// its own (not the process-wide bootstrap: tests run several HBS in one process). Counters and
/// the heartbeat latency histogram move as things happen; the rollout's gauges (hosts by phase,
/// progress, bytes by source kind, failed hosts by reason) are read from the state at each
/// scrape. deploy/grafana-fledge.json draws them; a test checks it queries only what exists.
public final class HBSMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory

    let heartbeats: Metrics.Counter
    let orders: Metrics.Counter
    let storeErrors: Metrics.Counter
    /// Beats refused for a wrong credential or for speaking for another host.
    let rejectedBeats: Metrics.Counter
    /// How long HBS took to answer a beat (not counting a long-poll's wait).
    let beatLatency: Metrics.Timer
    /// How long a sweep took: reading other instances' changes, the sweep (if this instance
    /// runs them) and its write.
    let sweepDuration: Metrics.Timer
    /// Hosts admitted into a rollout, and hosts failed by kind of reason (`failureClass`).
    private let admissions: Metrics.Counter
    private let failures: [String: Metrics.Counter]
    private let agents: Metrics.Gauge
    /// The shared store, when there is one: its reachability and failures are exported.
    let redis: RedisStore?
    private let redisUp: Metrics.Gauge?
    private let redisErrors: Metrics.Counter?
    /// Redis failures already counted (the store keeps the running total).
    private let redisErrorsSeen = Mutex(0)
    /// The gauges of the rollout last exported, by rollout id (removed when another is active).
    private let rolloutGauges = Mutex<(id: String, gauges: [String: Metrics.Gauge])?>(nil)

    /// Kinds of failure reason: a bounded label, where the reason itself is free text.
    static let failureClasses = ["rolled_back", "deadline", "lease", "verification", "sources", "disk", "refused", "self_test", "unit", "other"]

    public init(redis: RedisStore? = nil) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["hbs_heartbeat_duration_seconds"] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        ]
        factory.durationHistogramBuckets["hbs_sweep_duration_seconds"] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        self.factory = factory
        heartbeats = Metrics.Counter(label: "hbs_heartbeats_total", factory: factory)
        orders = Metrics.Counter(label: "hbs_orders_total", factory: factory)
        storeErrors = Metrics.Counter(label: "hbs_store_errors_total", factory: factory)
        rejectedBeats = Metrics.Counter(label: "hbs_rejected_beats_total", factory: factory)
        beatLatency = Metrics.Timer(label: "hbs_heartbeat_duration_seconds", factory: factory)
        sweepDuration = Metrics.Timer(label: "hbs_sweep_duration_seconds", factory: factory)
        admissions = Metrics.Counter(label: "hbs_admissions_total", factory: factory)
        // Every class exists from the start at 0: a series that appears late breaks rate().
        failures = Dictionary(uniqueKeysWithValues: Self.failureClasses.map {
            ($0, Metrics.Counter(label: "hbs_host_failures_total", dimensions: [("reason", $0)], factory: factory))
        })
        agents = Metrics.Gauge(label: "hbs_agents", factory: factory)
        self.redis = redis
        redisUp = redis.map { _ in Metrics.Gauge(label: "hbs_redis_up", factory: factory) }
        redisErrors = redis.map { _ in Metrics.Counter(label: "hbs_redis_errors_total", factory: factory) }
    }

    /// Follows what happens to rollouts (`ControlPlane.observe`).
    func note(_ event: RolloutEvent) {
        switch event.kind {
        case .admitted: admissions.increment()
        case .failed: failures[Self.failureClass(of: event.reason ?? "")]?.increment()
        default: break
        }
    }

    /// The kind of a failure's reason, for the `reason` label.
    static func failureClass(of reason: String) -> String {
        let text = reason.lowercased()
        let classes: [(String, [String])] = [
            ("rolled_back", ["rolled back"]), ("deadline", ["did not confirm"]), ("lease", ["lease expired", "silent for"]),
            ("verification", ["signature", "hash", "corrupt", "md5", "expired"]), ("disk", ["no space", "disk"]),
            ("unit", ["unit file"]), ("self_test", ["self-test"]), ("refused", ["refused"]),
            ("sources", ["every source failed", "source"]),
        ]
        return classes.first { $0.1.contains { text.contains($0) } }?.0 ?? "other"
    }

    /// The exposition, the gauges read from `state` first.
    func render(_ state: FleetState, planner: SourcePlanner) -> [UInt8] {
        agents.record(state.agents.count)
        if let redis {
            redisUp?.record(redis.isReachable ? 1 : 0)
            let total = Int(redis.failures)
            let new = redisErrorsSeen.withLock { seen in
                defer { seen = max(seen, total) }
                return max(0, total - seen)
            }
            if new > 0 { redisErrors?.increment(by: new) }
        }
        rolloutGauges.withLock { current in
            guard let rollout = state.activeRollout ?? state.rollouts.values.max(by: { $0.createdAt < $1.createdAt }) else { return }
            if current?.id != rollout.id {
                current?.gauges.values.forEach { $0.destroy() }
                current = (rollout.id, [:])
            }
            func gauge(_ name: String, _ dimensions: [(String, String)]) -> Metrics.Gauge {
                let key = name + dimensions.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
                if let existing = current?.gauges[key] { return existing }
                let made = Metrics.Gauge(label: name, dimensions: [("rollout", rollout.id)] + dimensions, factory: factory)
                current?.gauges[key] = made
                return made
            }
            // Counts the rollout keeps as hosts change; only bytes and reasons need a pass.
            for phase in HostPhase.allCases {
                gauge("hbs_rollout_hosts", [("phase", phase.rawValue)]).record(rollout.count(phase))
            }
            let hosts = rollout.hosts.count
            gauge("hbs_rollout_progress_ratio", []).record(hosts == 0 ? 0 : Double(rollout.count(.done)) / Double(hosts))
            gauge("hbs_rollout_running", []).record(rollout.phase == .running ? 1 : 0)
            let bytes = RolloutSummary.bytesBySourceKind(of: rollout, planner: planner)
            for kind in ["cdn", "peer"] {
                gauge("hbs_rollout_bytes", [("kind", kind)]).record(bytes[kind, default: 0])
            }
            // Failed now (a host that failed and then got there is not).
            let failed = Dictionary(rollout.hosts.values.filter { $0.phase == .failed }.map { (Self.failureClass(of: $0.reason ?? ""), 1) },
                                    uniquingKeysWith: +)
            for kind in Self.failureClasses {
                gauge("hbs_rollout_failed_hosts", [("reason", kind)]).record(failed[kind, default: 0])
            }
        }
        return registry.emitToBuffer()
    }
}
