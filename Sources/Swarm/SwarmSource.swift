/// One source of one download, and what it has done: which pieces it holds (as far as the
/// download knows), copies in flight, bytes delivered, failures, and whether it is still in.
public struct SwarmSource: Sendable {
    /// What the download knows a source can give.
    public enum Holdings: Sendable, Equatable {
        /// Every piece: an origin or CDN (it publishes no availability).
        case everything
        /// Not known yet: its availability has not arrived. Nothing is asked of it meanwhile.
        case unknown
        /// The verified pieces its availability lists: a peer (asked before origins, even once
        /// it holds them all).
        case pieces(PieceSet)

        func contains(_ piece: Int) -> Bool {
            switch self {
            case .everything: true
            case .unknown: false
            case .pieces(let set): set.contains(piece)
            }
        }
    }

    public let url: String
    /// Asked only once the download starves (or for an overdue piece): a CDN a swarm keeps as
    /// its last resort, so the origin sends each piece about once.
    public let isFallback: Bool
    public internal(set) var holdings: Holdings = .unknown
    public internal(set) var inFlight = 0
    public internal(set) var deliveredBytes: Int64 = 0
    var consecutiveFailures = 0
    /// Copies of its overtaken by a hedge, or given up on as too slow, in a row.
    var slowStrikes = 0
    /// Not asked before this moment (after a failure, or a busy answer's hint).
    public internal(set) var notBefore = -Double.infinity
    /// Since when every request to it has failed, if they have.
    var failingSince: Double?
    /// Why it is out of this download, if it is; and whether for what it did (not for being
    /// unreachable).
    public internal(set) var removal: String?
    public internal(set) var misbehaved = false
    public internal(set) var banned = false

    init(url: String, isFallback: Bool) {
        self.url = url
        self.isFallback = isFallback
        holdings = isFallback ? .everything : .unknown
    }

    public var isUsable: Bool { removal == nil }

    /// A peer: it publishes which pieces it holds.
    public var isPeer: Bool { if case .pieces = holdings { true } else { false } }

    /// Not a fallback, known to hold everything: an origin or CDN the order made a source.
    var isOrigin: Bool { !isFallback && holdings == .everything }

    /// Usable and, as far as the download knows, holding `piece`.
    func offers(_ piece: Int) -> Bool { removal == nil && holdings.contains(piece) }
}
