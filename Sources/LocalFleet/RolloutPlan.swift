import Foundation

/// A v1 rollout as `POST /v1/rollouts` takes it: which origins (with the capacity the planner
/// shares out), canary, batches, concurrency, and whether peers may serve.
public struct RolloutPlan: Sendable {
    /// Hosts in the canary batch; 0: none.
    public var canary = 0
    /// Hosts per batch after the canary; nil: everyone else in one batch.
    public var batchSize: Int?
    /// Hosts upgrading at once; nil: HBS's default.
    public var maxConcurrent: Int?
    public var peers = true
    public var failureBudget = 0
    /// Seconds a host may stay silent while it upgrades. Long: an agent does not beat while it
    /// downloads, and a download under tight caps takes a while.
    public var leaseSeconds: Int64 = 900
    public var deadlineSeconds: Int64 = 1800
    /// Capacity announced for each origin, Mbit/s; nil: the origin's cap (or 10,000 uncapped).
    public var originCapacityMbps: Double?

    public init() {}

    /// The request body for `sources` (origin base URLs) and the release `name` `version`.
    func body(name: String, version: String, sources: [String], capacityMbps: Double) -> String {
        var json: [String: Any] = [
            "release": ["name": name, "version": version],
            "sources": sources.map { ["url": $0, "capacityMbps": originCapacityMbps ?? capacityMbps] },
            "canary": canary, "peers": peers, "failureBudget": failureBudget,
            "leaseSeconds": leaseSeconds, "deadlineSeconds": deadlineSeconds,
        ]
        if let batchSize { json["batchSize"] = batchSize }
        if let maxConcurrent { json["maxConcurrent"] = maxConcurrent }
        let data = (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
