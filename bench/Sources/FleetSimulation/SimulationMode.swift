/// How the fleet gets the release in one simulated run, like the fleet bench's modes.
public enum SimulationMode: String, CaseIterable, Sendable {
    /// Falcon's way: one CDN, peers never serve, nothing planned (every host downloads at once).
    case origin
    /// Several CDNs shared out by their capacity, peers never serve (falcon's "a different
    /// address per batch", planned).
    case cdnBatches = "cdn-batches"
    /// Peers serve once they hold the whole release.
    case peerFile = "peer-file"
    /// Peers relay each verified piece at once: a swarm (the planner's `pieceRelay`).
    case peerPiece = "peer-piece"

    public var peersServe: Bool { self == .peerFile || self == .peerPiece }

    public var pieceRelay: Bool { self == .peerPiece }
}
