/// How a virtual agent uses the sources of its order, as the real agent's downloader does:
/// every source at once; the next piece for a source is, of the pieces that source holds and
/// the host still needs, one held by the fewest of the host's sources (rarest first), ties
/// broken at random per host; at most `maxPerPeer` pieces in flight from one peer, `maxPerCDN`
/// from one CDN, `maxInFlight` in all; a fallback source (a CDN given as a last resort) only
/// for pieces none of the other sources has offered for `fallbackPatience` seconds.
///
/// The numbers live here; the choice itself is `PieceSwarm.fill`.
public struct SwarmPolicy: Sendable, Equatable {
    public var maxInFlight = 8
    public var maxPerPeer = 2
    public var maxPerCDN = 2
    public var fallbackPatience = 2.0

    public init() {}

    func limit(isCDN: Bool) -> Int { isCDN ? maxPerCDN : maxPerPeer }
}
