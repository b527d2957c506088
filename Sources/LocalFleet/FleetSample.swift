/// What the fleet looked like at one moment of a rollout: HBS's view, and the bytes the
/// servers themselves say they sent (origins, and agents' peer servers).
public struct FleetSample: Sendable {
    public var progress: RolloutProgress
    /// Bytes served by every origin so far (their request logs).
    public var originBytes: Int64
    /// Bytes served by every agent's peer server so far (their request logs).
    public var peerBytes: Int64

    public var seconds: Double { progress.seconds }
}
