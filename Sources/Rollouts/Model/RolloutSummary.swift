/// A rollout as an operator reads it: where it stands, per batch and per host state, where
/// the bytes came from, who failed and why, and when it should be done.
public struct RolloutSummary: Codable, Sendable {
    public struct Batch: Codable, Sendable {
        public var batch: Int
        public var counts: [String: Int]
    }

    public struct FailedHost: Codable, Sendable {
        public var host: String
        public var reason: String
        public var failures: Int
        public var retryAt: Int64?
    }

    public var id: String
    public var name: String
    public var version: String
    public var phase: String
    public var pauseReason: String?
    public var createdAt: Int64
    public var finishedAt: Int64?
    public var hosts: Int
    public var counts: [String: Int]
    public var batches: [Batch]
    public var currentBatch: Int?
    public var bytesBySourceKind: [String: Int64]
    public var failed: [FailedHost]
    /// Seconds until every host is done at the pace so far; nil before the first is done.
    public var etaSeconds: Double?

    /// Bytes the hosts fetched, by kind of source (`cdn`, `peer`): what `/metrics` exports too.
    public static func bytesBySourceKind(of rollout: Rollout, planner: SourcePlanner) -> [String: Int64] {
        var bytes: [String: Int64] = ["cdn": 0, "peer": 0]
        for host in rollout.hosts.values {
            for (url, count) in host.bytesBySource { bytes[planner.kind(of: url, spec: rollout.spec).rawValue, default: 0] += count }
        }
        return bytes
    }

    public init(_ rollout: Rollout, planner: SourcePlanner, now: Int64) {
        id = rollout.id
        name = rollout.spec.name
        version = rollout.spec.version
        phase = rollout.phase.rawValue
        pauseReason = rollout.pauseReason
        createdAt = rollout.createdAt
        finishedAt = rollout.finishedAt
        hosts = rollout.hosts.count
        // One pass, counting phases: at a rollout's creation this answers the POST, over every
        // host of the fleet (grouping the records themselves copied each of them).
        var byPhase: [HostPhase: Int] = [:]
        var byBatch: [Int: [HostPhase: Int]] = [:]
        var failed: [FailedHost] = []
        for (host, progress) in rollout.hosts {
            byPhase[progress.phase, default: 0] += 1
            byBatch[progress.batch, default: [:]][progress.phase, default: 0] += 1
            if progress.failures > 0 {
                failed.append(FailedHost(host: host, reason: progress.reason ?? "", failures: progress.failures, retryAt: progress.retryAt))
            }
        }
        counts = Self.named(byPhase)
        batches = byBatch.sorted { $0.key < $1.key }.map { Batch(batch: $0.key, counts: Self.named($0.value)) }
        currentBatch = rollout.currentBatch
        bytesBySourceKind = Self.bytesBySourceKind(of: rollout, planner: planner)
        self.failed = failed.sorted { $0.host < $1.host }
        let done = counts[HostPhase.done.rawValue, default: 0]
        let elapsed = Double(max(1, now - rollout.createdAt))
        etaSeconds = done > 0 && rollout.phase.isActive ? Double(hosts - done) * elapsed / Double(done) : nil
    }

    private static func named(_ counts: [HostPhase: Int]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) })
    }
}
