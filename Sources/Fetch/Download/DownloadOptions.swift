import Swarm
import Transfer
import Wire

/// How hard a download pushes, and how patient it is with sources. The swarm's own rules and
/// defaults (pieces in flight, deadlines, fallbacks, when a source is out) are `policy`'s.
public struct DownloadOptions: Sendable {
    public var policy = SwarmPolicy.default
    /// A CDN seed's share of the release (from HBS's order): fetched first, and the CDN asked
    /// only for pieces none of its peers holds.
    public var seedShare: SeedShare?
    /// This host's own range server port, named in every availability stream it opens
    /// (`Fledge-Peer-Port`), so a peer fetching the same release can take it in as a source
    /// (`SwarmPolicy.announcedPeers`); nil when it serves none.
    public var announcePort: Int?
    /// Seeds this download's random tie order; nil draws one (each host its own). Fixed only
    /// to replay a download's choices.
    public var tieSeed: UInt64?
    public var connectTimeoutMs: Int = 3000
    /// Total receive rate cap in bytes per second; nil for none. Pieces start in turn under it,
    /// and each transfer is held to it.
    public var maxBytesPerSecond: Int64? = nil
    /// A whole-file (falcon) or manifest transfer slower than `stallBytesPerSecond` for
    /// `stallSeconds` counts as dead. Pieces have deadlines of their own (`policy`).
    public var stallBytesPerSecond: Int = 1024
    public var stallSeconds: Int = 10
    /// A falcon release's whole file: at most this many bytes, and this many seconds.
    public var maxWholeFileBytes: Int64 = 1 << 30
    public var wholeFileSeconds: Int = 1800
    /// A manifest: at most this many bytes, and this many seconds from one source.
    public var maxManifestBytes: Int = 4 << 20
    public var manifestSeconds: Int = 10

    public init() {}
}

/// Where a download stands; handed to the progress callback after every verified piece, and
/// when a source is dropped.
public struct DownloadProgress: Sendable {
    public var verifiedBytes: Int64
    public var totalBytes: Int64
    public var verifiedPieces: Int
    public var totalPieces: Int
    /// Verified bytes fetched in this run, by source base URL.
    public var bytesBySource: [String: Int64]
    /// Sources given up on so far, with why; and those given up on for what they did (not
    /// for being unreachable), which a host reports to HBS.
    public var droppedSources: [SourceFailure]
    public var misbehavingSources: [SourceFailure]
}

/// One verified piece and where it came from.
public struct PieceDelivery: Sendable, Equatable {
    public var piece: Int
    public var source: String
}

/// What a finished download did.
public struct DownloadReport: Sendable {
    /// Verified bytes fetched in this run (pieces already on disk are not counted).
    public var fetchedBytes: Int64
    /// Every body byte received, good or bad.
    public var receivedBytes: Int64
    public var resumedBytes: Int64
    public var bytesBySource: [String: Int64]
    /// Sources dropped or banned on the way, with why (the download still succeeded).
    public var droppedSources: [SourceFailure]
    /// Second copies asked for (overdue pieces hedged, the endgame).
    public var secondCopies: Int
    /// Each piece fetched in this run (index over the release) and the source that gave it,
    /// in the order they were verified.
    public var deliveries: [PieceDelivery]
    public var seconds: Double
}
