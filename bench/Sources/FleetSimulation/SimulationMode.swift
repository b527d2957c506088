/// How the fleet gets the release in one simulated run, like the fleet bench's modes.
public enum SimulationMode: String, CaseIterable, Sendable {
    /// Falcon's way: one CDN, peers never serve.
    case origin
    /// Every CDN, peers never serve (falcon's "a different address per batch", planned).
    case cdnBatches = "cdn-batches"
    /// Every CDN, and peers serve once they hold the whole release.
    case peerFile = "peer-file"
    /// Every CDN, and peers relay each verified piece at once (the planner's `pieceRelay`).
    case peerPiece = "peer-piece"

    /// CDNs this mode uses, of `available`.
    public func cdns(of available: Int) -> Int { self == .origin ? min(1, available) : available }

    public var peersServe: Bool { self == .peerFile || self == .peerPiece }

    public var pieceRelay: Bool { self == .peerPiece }
}
