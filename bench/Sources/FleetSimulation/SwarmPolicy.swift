/// How a virtual agent uses the sources of its order, as the real agent's downloader does
/// (Transfer's `PieceQueue`, `SourcePool` and `DownloadSession`; the numbers are the agent's):
///
/// - every source at once; at most `maxPerSource` pieces in flight from one source (the agent
///   sets 2), `maxInFlight` in all (`DownloadOptions.maxInFlight`, 8);
/// - a peer's pieces are known from its piece map, asked for when the peer is added and again
///   every `mapRefresh` seconds while it still grows; a CDN holds everything;
/// - the next piece is the rarest one some source with a free slot holds (fewest of the
///   host's sources hold it, fallbacks not counted), ties in an order each download draws at
///   random; it goes to a peer whose map lists it (the least busy), else to a source holding
///   everything (a CDN, a peer whose map is complete), in the order's order, else to a fallback;
/// - a fallback source only serves a piece none of the other sources holds, once it has been so
///   for `fallbackPatience` seconds (or at once when the order lists no other source).
///
/// The numbers live here; the choice itself is `PieceSwarm.fill`.
public struct SwarmPolicy: Sendable, Equatable {
    public var maxInFlight = 8
    public var maxPerSource = 2
    public var mapRefresh = 0.25
    public var fallbackPatience = 2.0

    public init() {}
}
