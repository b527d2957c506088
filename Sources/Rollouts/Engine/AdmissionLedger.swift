/// Who holds the concurrency slots of the active rollout. Alone, an HBS counts its own admitted
/// hosts and needs no ledger; several instances share one (a sorted set in Redis, changed only
/// atomically), so the limit holds across all of them and a silent host's slot frees itself.
/// Calls never throw: a ledger that cannot be reached admits nobody and says `.unknown`.
public protocol AdmissionLedger: Sendable {
    /// Takes (or renews) `host`'s slot until `leaseUntil`; false when `limit` slots are held.
    func admit(host: String, limit: Int, leaseUntil: Int64, now: Int64) -> Bool
    func renew(host: String, leaseUntil: Int64)
    func release(host: String)
    /// Until when `host` holds a slot, as every instance sees it.
    func lease(of host: String) -> LeaseLookup
    /// When each of `hosts` last beat at any instance, where known: an instance sees only the
    /// beats it answered, and must not take a host beating elsewhere for absent or gone.
    func lastSeen(of hosts: [String]) -> [String: Int64]
}

public enum LeaseLookup: Equatable, Sendable {
    case held(until: Int64)
    case free
    /// The ledger could not be asked; decide nothing on it.
    case unknown
}
