/// How a virtual agent uses the sources of its order, as the real agent's downloader does
/// (Transfer's `PieceQueue`, `SourcePool`, `DownloadSession`, the range server's upload slots;
/// the numbers are the agent's defaults):
///
/// - every source at once; at most `maxPerSource` pieces in flight from one source
///   (`piecesPerSource`, 2), `maxInFlight` in all (8);
/// - a peer's pieces are known from its piece map, read when the peer is added and again every
///   `mapRefresh` seconds until it is complete; a CDN holds everything;
/// - a peer sends at most `uploadSlots` pieces at once (`peerUploadSlots`, 1); a request
///   beyond that is refused (429) and the host leaves that peer alone for `busyBackoff`;
/// - the next piece is the rarest one some free source holds (fewest of the host's sources
///   hold it, fallbacks not counted), ties in an order each download draws at random; it goes
///   to a peer whose map lists it (the least busy, ties spread by the piece), else to a CDN in
///   the order's order, else to a fallback;
/// - a fallback (a CDN the order gives as a last resort) only serves pieces none of the other
///   sources holds, and only once the download has had nothing in flight from its other
///   sources for `fallbackPatience` seconds (`fallbackPatienceSeconds`, 5), or at once when
///   the order lists no other source.
///
/// With `pacedDownload` (the agent's `downloadBytesPerSecond` cap, a token bucket, as the
/// fleet bench sets it) pieces start in turn: each start books its bytes at that rate, and the
/// next waits until the booking is paid off (less one chunk, about 1/20 s, of slack).
///
/// Not modeled: round-trip times (a map, a 429 or a piece request costs no time), failures of
/// sources mid-piece, and the per-piece memory of sources that refused it.
///
/// The numbers live here; the choice itself is `PieceSwarm.fill`.
public struct SwarmPolicy: Sendable, Equatable {
    public var maxInFlight = 8
    public var maxPerSource = 2
    public var uploadSlots = 1
    public var busyBackoff = 0.25
    public var mapRefresh = 0.4
    public var fallbackPatience = 5.0
    /// The download cap that paces piece starts, bytes per second; nil: none (the NIC limits).
    public var pacedDownload: Double?

    public init() {}
}
