/// How hard a download pushes, and how patient it is with sources.
public struct DownloadOptions: Sendable {
    /// Pieces in flight at once, over all sources.
    public var maxInFlight: Int = 8
    /// Pieces in flight at once from one source.
    public var maxPerSource: Int = 4
    public var connectTimeoutMs: Int = 3000
    /// A transfer slower than `stallBytesPerSecond` for `stallSeconds` counts as dead.
    public var stallBytesPerSecond: Int = 1024
    public var stallSeconds: Int = 10
    /// Consecutive failures (refused, timed out, died mid-body, HTTP errors) after which a
    /// source is dropped for this download. A bad piece bans a source at once.
    public var sourceFailureLimit: Int = 3
    /// How long a source may answer only "not here yet" (503, a peer still assembling) before
    /// it is dropped.
    public var unavailablePatience: Duration = .seconds(30)
    /// How often a peer's piece map is asked for again while it still grows.
    public var pieceMapRefresh: Duration = .milliseconds(400)
    /// How long a download with nothing in flight from its other sources (starving) waits
    /// before its fallback sources are asked for the pieces no other source holds.
    public var fallbackPatience: Duration = .seconds(2)
    /// Total receive rate cap in bytes per second; nil for none. Shared out over the pieces in
    /// flight (libcurl caps each transfer).
    public var maxBytesPerSecond: Int64? = nil

    public init() {}
}

/// Where a download stands; handed to the progress callback after every verified piece.
public struct DownloadProgress: Sendable {
    public var verifiedBytes: Int64
    public var totalBytes: Int64
    public var verifiedPieces: Int
    public var totalPieces: Int
    /// Verified bytes fetched in this run, by source base URL.
    public var bytesBySource: [String: Int64]
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
    public var seconds: Double
}
