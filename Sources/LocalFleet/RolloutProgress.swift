import Foundation

/// One reading of `GET /v1/rollouts/ID`, taken `seconds` after the rollout was posted.
public struct RolloutProgress: Sendable {
    public var seconds: Double
    /// running, paused, aborted or completed.
    public var phase: String
    public var pauseReason: String?
    public var hosts: Int
    /// Hosts by phase: pending, admitted, downloading, installing, restarting, confirming,
    /// done, failed, absent.
    public var counts: [String: Int]
    /// Verified bytes the agents report having fetched, by kind of source (cdn, peer).
    public var bytesBySourceKind: [String: Int64]
    /// "host: reason" of every host that failed at least once.
    public var failed: [String]

    /// Hosts confirmed on the new version.
    public var done: Int { counts["done", default: 0] }

    init?(json: Any?, seconds: Double) {
        guard let summary = json as? [String: Any], let phase = summary["phase"] as? String else { return nil }
        self.seconds = seconds
        self.phase = phase
        pauseReason = summary["pauseReason"] as? String
        hosts = summary["hosts"] as? Int ?? 0
        counts = summary["counts"] as? [String: Int] ?? [:]
        bytesBySourceKind = (summary["bytesBySourceKind"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.int64Value }
        failed = (summary["failed"] as? [[String: Any]] ?? []).map { "\($0["host"] as? String ?? "?"): \($0["reason"] as? String ?? "")" }
    }
}
