import LocalFleet

/// What one mode of `fledge-bench fleet` measured.
struct FleetModeResult: Sendable {
    var mode: FleetMode
    /// F: the published release's bytes, and its pieces.
    var fileBytes: Int64
    var pieces: Int
    var model: TransferModel
    /// Seconds from the rollout's POST until 50, 90 and 100 % of the hosts were confirmed.
    var t50: Double?
    var t90: Double?
    var t100: Double?
    /// Bytes the origins served (their request logs), and the agents' peer servers.
    var originBytes: Int64
    var peerBytes: Int64
    /// Verified bytes the agents report by kind of source (HBS's bytesBySourceKind).
    var reportedCDNBytes: Int64
    var reportedPeerBytes: Int64
    var cpu: FleetCPU?
    /// What the kernel-shaped links carried during the rollout (namespaced fleets only).
    var links: KernelLinks.Counters?
    /// (seconds, hosts confirmed) at each change.
    var curve: [(seconds: Double, done: Int)]
    /// Why the mode did not complete, if it did not.
    var failure: String?

    var ratioToMinimum: Double? { t100.map { $0 / model.minimumSeconds } }
    var ratioToOriginOnly: Double? { t100.map { $0 / model.originOnlySeconds } }
    var originEgressOverF: Double { Double(originBytes) / Double(fileBytes) }
}
