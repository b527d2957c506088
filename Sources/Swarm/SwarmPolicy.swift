/// How a host fetches a release from a swarm: its knobs and their defaults, in one place.
/// The agent's downloader (Transfer's `DownloadSession`), its range server's upload slots and
/// the fleet simulator all read these, and the choices themselves are `PieceScheduler`'s.
///
/// Times are seconds. Where a rule depends on how long a piece takes, it follows the piece
/// times the download observes (`PieceScheduler.typicalPieceSeconds`), not a fixed number:
/// at 1 Gbit/s a 2 MiB piece takes 17 ms, at 8 Mbit/s half a second.
public struct SwarmPolicy: Sendable, Equatable {
    /// Pieces in flight at once over all sources. A copy past its hedge deadline does not
    /// count: it is presumed lost, and must not keep the download from going on.
    ///
    /// One, as a peer sends one (`uploadSlots`): each piece then crosses a link at its full
    /// rate, and a swarm is a matching of free uploaders to hosts that want what they hold.
    /// Two pieces at half the downlink each would hold two uploaders at half their uplink (the
    /// simulator measured 1.6 x T_min at 32 hosts that way, 1.1 x with one).
    public var maxInFlight = 1
    /// Pieces in flight at once from one source (second copies of a piece never go to the
    /// source of the first).
    public var maxPerSource = 1
    /// Pieces a peer sends at once (its range server's upload slots): one piece at the whole
    /// uplink relays each piece soonest.
    public var uploadSlots = 1
    /// Requests a busy peer holds per upload slot, started the moment the slot frees; beyond
    /// them it answers 429 with when to come back. None by default: a host waiting in one
    /// peer's queue is not asking a free one (the simulator measured 1.6 x T_min with one
    /// queued per slot, 1.1 x without), and a round trip is far shorter than a piece.
    public var uploadQueue = 0
    /// A peer's busy answer without a hint: come back after this long.
    public var busyRetry = 0.05
    /// Without a verified piece from its sources (the order's fallbacks aside) for this long,
    /// and for `starveFactor` typical piece times, a download is starving: its fallbacks (the
    /// CDN) may then serve any piece. Progress, not "something in flight", decides: a trickling
    /// peer cannot keep the fallback away, and pieces that are merely slow do not call it in.
    public var fallbackPatience = 3.0
    public var starveFactor = 4.0
    /// A piece in flight longer than `hedgeFactor` typical piece times (at least `hedgeFloor`)
    /// is overdue: a second holder is asked for it, and the first copy to arrive wins.
    public var hedgeFactor = 3.0
    public var hedgeFloor = 0.1
    /// A copy in flight longer than `abortFactor` typical piece times (at least `abortFloor`)
    /// is given up: its source failed it ("too slow").
    public var abortFactor = 10.0
    public var abortFloor = 2.0
    /// The piece time assumed before the first piece arrives.
    public var initialPieceSeconds = 2.0
    /// Endgame: once every piece left is in flight and at most this many are left, each may
    /// be asked of a second holder too.
    public var endgamePieces = 3
    /// Failures in a row (refused, reset, wrong status or length, a piece it listed but does
    /// not have) after which a source is dropped. A corrupt piece bans a source at once.
    public var failureLimit = 3
    /// A peer (it publishes availability) may only be restarting into its new version: it is
    /// kept through this much failing before it is dropped.
    public var peerPatience = 15.0
    /// A source overtaken by hedges (or given up on as too slow) this many times in a row is
    /// dropped as too slow.
    public var slowLimit = 3
    /// Peers that announce themselves while fetching from this host (they watch its
    /// availability, and name their own range server) become its sources too, at most this
    /// many: HBS lists a host's peers when it admits it, so without this the hosts admitted
    /// last would be asked by nobody, and those admitted first by everybody.
    public var announcedPeers = 12
    /// A CDN seed asks its CDN for a piece only while at most this many of its peers hold it.
    public var seedOriginHolders = 0

    public init() {}

    /// The policy as it applies to one host whose download (and uploads) the caller caps.
    public static let `default` = SwarmPolicy()
}

/// When a busy peer's next upload slot frees, as the peer tells the hosts it turns away
/// ("come back in N ms"), and as the simulator models it: the soonest running upload's time
/// left at the peer's rate, plus what waits in its queue shared over its slots.
public enum UploadHint {
    /// `remaining`: seconds each running upload still needs; `queued`: seconds the bodies
    /// waiting in the queue need; a hint between half a millisecond and 5 s.
    public static func retryAfter(remaining: [Double], queued: Double, slots: Int) -> Double {
        let first = max(0, remaining.min() ?? 0)
        return min(5, max(0.0005, first + queued / Double(max(1, slots))))
    }
}

/// How a byte-rate cap paces its bytes: in chunks of about a tenth of a second (each chunk is
/// a wake-up on both ends of the link; 100 ms of burst is what a token bucket allows anyway),
/// at most 1 MiB, and its schedule may lag the clock by one chunk. The agent's `RateLimiter`
/// paces uploads and piece starts this way; the simulator models the same. The ceiling was
/// 256 KiB: serving a peer at 50 MB/s then cost 3.3-4.0 % of a core against nginx's 1.1 %
/// (about 190 paced writes a second); at 1 MiB it costs 1.8-2.0 % (fledge-bench agent).
public enum RatePacing {
    public static func chunkBytes(bytesPerSecond: Double) -> Int {
        Int(min(1024 * 1024, max(4 * 1024, bytesPerSecond / 10)))
    }
}
