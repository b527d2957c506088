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
    public var maxInFlight = 8
    /// Pieces in flight at once from one source: a peer's uplink is shared by everyone it
    /// serves, and a piece that finishes sooner is one more the swarm can relay.
    public var maxPerSource = 2
    /// Pieces a peer sends at once (its range server's upload slots): one piece at the whole
    /// uplink relays each piece soonest.
    public var uploadSlots = 1
    /// Requests a busy peer holds per upload slot, started the moment the slot frees (so its
    /// uplink never idles for a round trip); beyond them it answers 429 with when to come back.
    public var uploadQueue = 1
    /// A peer's busy answer without a hint: come back after this long.
    public var busyRetry = 0.05
    /// Without a verified piece from its sources (the order's fallbacks aside) for this long,
    /// a download is starving: its fallbacks (the CDN) may then serve any piece. Progress,
    /// not "something in flight", decides: a trickling peer cannot keep the fallback away.
    public var fallbackPatience = 3.0
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

    public init() {}

    /// The policy as it applies to one host whose download (and uploads) the caller caps.
    public static let `default` = SwarmPolicy()
}
