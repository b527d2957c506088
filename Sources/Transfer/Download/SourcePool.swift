/// The sources of one download, in the caller's order of preference, and what each has done:
/// pieces in flight, bytes delivered, failures, whether it is still usable, and which pieces it
/// holds (a peer's piece map; an origin holds everything).
struct SourcePool {
    /// What a source can give.
    enum Holdings: Equatable {
        /// Every piece: an origin or CDN (it publishes no piece map).
        case everything
        /// Not known yet: its piece map is being asked for. Nothing is asked of it meanwhile.
        case unknown
        /// The verified pieces its map lists: a peer (asked before origins, even once whole).
        case pieces(PieceMap)
    }

    struct Source {
        let base: String
        /// Asked only for pieces no other source has offered for a while: a CDN a swarm keeps
        /// as its last resort, so the origin sends each piece about once.
        let isFallback: Bool
        var holdings: Holdings = .everything
        var inFlight = 0
        var deliveredBytes: Int64 = 0
        var consecutiveFailures = 0
        var lastFailure = ""
        /// Backing off until then, after a failure.
        var notBefore: ContinuousClock.Instant?
        /// Since when it has answered only "not here yet" (503), if it has.
        var unavailableSince: ContinuousClock.Instant?
        /// Since when every request to it has failed, if they have.
        var failingSince: ContinuousClock.Instant?
        /// Why the source is out of this download, if it is.
        var removal: String?
        var banned = false

        var isUsable: Bool { removal == nil }

        func holds(_ piece: Int) -> Bool {
            switch holdings {
            case .everything: true
            case .unknown: false
            case .pieces(let map): map[piece]
            }
        }
    }

    private(set) var sources: [Source]
    let failureLimit: Int
    /// This download's own tie-break among equally good peers.
    private let salt = Int.random(in: 0..<65536)

    init(bases: [String], fallbacks: [String] = [], failureLimit: Int) {
        sources = []
        self.failureLimit = failureLimit
        for base in bases { add(base, fallback: false) }
        for base in fallbacks { add(base, fallback: true) }
    }

    /// Adds a source (a peer HBS named since the download began). One already here that was
    /// dropped for failing (not banned) is given another chance: it may have restarted.
    /// Returns its index when it is new or revived.
    @discardableResult
    mutating func add(_ base: String, fallback: Bool) -> Int? {
        let base = base.hasSuffix("/") ? String(base.dropLast()) : base
        if let index = sources.firstIndex(where: { $0.base == base }) {
            guard sources[index].removal != nil, !sources[index].banned else { return nil }
            sources[index].removal = nil
            sources[index].consecutiveFailures = 0
            sources[index].unavailableSince = nil
            sources[index].notBefore = nil
            return index
        }
        sources.append(Source(base: base, isFallback: fallback))
        return sources.count - 1
    }

    var allRemoved: Bool { sources.allSatisfy { $0.removal != nil } }

    var failures: [SourceFailure] {
        sources.compactMap { source in source.removal.map { SourceFailure(source: source.base, reason: $0) } }
    }

    private func isFree(_ index: Int, maxPerSource: Int, now: ContinuousClock.Instant) -> Bool {
        let source = sources[index]
        return source.isUsable && source.inFlight < maxPerSource && (source.notBefore.map { $0 <= now } ?? true)
    }

    /// The first usable source, in preference order, with a free slot, skipping `excluded`.
    func pick(maxPerSource: Int, excluding excluded: Set<Int>, now: ContinuousClock.Instant) -> Int? {
        sources.indices.first { isFree($0, maxPerSource: maxPerSource, now: now) && !excluded.contains($0) }
    }

    /// The source to ask for `piece` (its index over the whole release): one holding it with a
    /// free slot, not in `excluded`; peers with maps first, the least busy first (they serve
    /// others too; ties broken by the piece, so hosts holding the same peers spread over
    /// them), then origins in preference order, then fallbacks when `fallbacks` allows.
    func pick(piece: Int, maxPerSource: Int, excluding excluded: Set<Int>, fallbacks: Bool, now: ContinuousClock.Instant) -> Int? {
        var best: Int?
        var bestRank = (Int.max, Int.max, Int.max)
        for index in sources.indices where !excluded.contains(index) && isFree(index, maxPerSource: maxPerSource, now: now) {
            let source = sources[index]
            guard source.holds(piece), !source.isFallback || fallbacks else { continue }
            let tier: Int
            switch (source.isFallback, source.holdings) {
            case (true, _): tier = 2
            case (false, .pieces): tier = 0
            case (false, _): tier = 1
            }
            let spread = (index &* 40503 &+ piece &* 2654435761 &+ salt) & 0xFFFF
            let rank = (tier, tier == 0 ? source.inFlight : index, tier == 0 ? spread : 0)
            if rank < bestRank { (best, bestRank) = (index, rank) }
        }
        return best
    }

    /// How many usable sources other than fallbacks, and not in `excluded`, hold `piece`: its
    /// rarity.
    func holderCount(of piece: Int, excluding excluded: Set<Int> = []) -> Int {
        sources.indices.reduce(0) { count, index in
            let source = sources[index]
            return count + (source.isUsable && !source.isFallback && source.holds(piece) && !excluded.contains(index) ? 1 : 0)
        }
    }

    /// Whether a usable source not in `excluded` holds `piece` (fallbacks hold everything).
    func couldGive(_ piece: Int, excluding excluded: Set<Int>) -> Bool {
        sources.indices.contains { sources[$0].isUsable && sources[$0].holds(piece) && !excluded.contains($0) }
    }

    /// Whether a usable source other than a fallback is left.
    var hasUsablePrimary: Bool { sources.contains { $0.isUsable && !$0.isFallback } }

    /// Whether some source could take a request now.
    func hasFreeSlot(maxPerSource: Int, now: ContinuousClock.Instant) -> Bool {
        sources.indices.contains { isFree($0, maxPerSource: maxPerSource, now: now) }
    }

    /// The moment the earliest backed-off usable source may be tried again.
    var nextReady: ContinuousClock.Instant? {
        sources.filter { $0.removal == nil }.compactMap(\.notBefore).min()
    }

    mutating func started(_ index: Int) { sources[index].inFlight += 1 }
    mutating func finished(_ index: Int) { sources[index].inFlight -= 1 }

    mutating func setHoldings(_ index: Int, _ holdings: Holdings) { sources[index].holdings = holdings }

    mutating func delivered(_ index: Int, bytes: Int64) {
        sources[index].deliveredBytes += bytes
        sources[index].consecutiveFailures = 0
        sources[index].unavailableSince = nil
        sources[index].failingSince = nil
    }

    /// A peer (it publishes a piece map) that may only be restarting into its new version:
    /// kept through `peerPatience` of failures, backing off up to 2 s, then dropped.
    static let peerPatience = Duration.seconds(15)

    /// The source is busy serving others (429): not asked again for a moment; no blame.
    mutating func busy(_ index: Int, now: ContinuousClock.Instant) {
        sources[index].notBefore = now + .milliseconds(250)
    }

    /// The source answered "not here yet": no blame, unless it has answered only that for
    /// `patience` (a peer that never gets the release must not hold a download forever).
    mutating func unavailable(_ index: Int, now: ContinuousClock.Instant, patience: Duration) {
        let since = sources[index].unavailableSince ?? now
        sources[index].unavailableSince = since
        if now - since >= patience {
            remove(index, reason: "had none of the pieces asked for in \(Int(patience.seconds)) s")
        }
    }

    /// A piece failed on this source for a reason that may pass (refused, timeout, reset,
    /// HTTP error): back off, and drop the source after `failureLimit` in a row.
    mutating func failed(_ index: Int, reason: String, now: ContinuousClock.Instant) {
        sources[index].consecutiveFailures += 1
        sources[index].lastFailure = reason
        let failures = sources[index].consecutiveFailures
        let since = sources[index].failingSince ?? now
        sources[index].failingSince = since
        let isPeer: Bool
        switch sources[index].holdings {
        case .pieces: isPeer = true
        case .everything, .unknown: isPeer = false
        }
        if failures >= failureLimit && (!isPeer || now - since >= Self.peerPatience) {
            remove(index, reason: "\(reason) (\(failures) failures in a row)")
        } else {
            sources[index].notBefore = now + .milliseconds(min(2000, 200 << min(failures - 1, 4)))
        }
    }

    /// The source served bytes that do not match the signed manifest: never again in this download.
    mutating func ban(_ index: Int, reason: String) {
        sources[index].banned = true
        remove(index, reason: "banned: \(reason)")
    }

    private mutating func remove(_ index: Int, reason: String) {
        if sources[index].removal == nil { sources[index].removal = reason }
    }

    var bytesBySource: [String: Int64] {
        Dictionary(sources.map { ($0.base, $0.deliveredBytes) }, uniquingKeysWith: +)
    }
}
