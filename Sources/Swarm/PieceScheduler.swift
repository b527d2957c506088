import Wire

/// The swarm policy of one download: which piece to ask for next and of which source, when to
/// ask a second holder, when to give a copy up, and when a source is out. Pure bookkeeping, no
/// I/O and no clock: time comes in as seconds. The agent's downloader (Transfer's
/// `DownloadSession`) and the fleet simulator both drive it, so the simulator runs the very
/// choices the agent makes.
///
/// - **Rarest first**: the next piece is the one the fewest of the download's sources hold
///   (as their availability says), among those a source with a free slot can give; ties in
///   an order the download draws at random (a seed's share first), so hosts starting together
///   fetch different pieces and have something to trade at once.
/// - **Sources**: a peer holding the piece (the least busy) before an origin; an origin of a
///   CDN seed only for pieces none of the host's peers holds; the order's fallbacks only once
///   the download starves (no verified piece from its other sources for `fallbackPatience`),
///   or for a hedge of an overdue piece.
/// - **No idle gaps**: the caller asks for the next piece the moment a piece completes, a
///   source's availability grows or a busy source's hint runs out (`nextWake`).
/// - **Deadlines**: a copy in flight longer than `hedgeFactor` typical piece times is overdue,
///   and the piece is asked of a second holder (the first copy to arrive wins, the other is
///   cancelled); past `abortFactor` it is given up. Overdue copies do not hold a slot. In the
///   endgame the last few pieces are asked of two holders.
/// - **Sources that misbehave** are dropped (failures in a row, too slow, a piece listed but
///   missing) or banned (a corrupt piece): `dropped` lists them, with why.
public struct PieceScheduler: Sendable {
    /// A piece to ask a source for.
    public struct Assignment: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// A piece nobody is fetching yet.
            case fresh
            /// A second copy of a piece whose first is overdue.
            case hedge
            /// A second copy of one of the last pieces.
            case endgame
        }

        public let piece: Int
        public let source: Int
        public let kind: Kind

        public init(piece: Int, source: Int, kind: Kind) {
            self.piece = piece
            self.source = source
            self.kind = kind
        }
    }

    /// How a request ended, short of the piece arriving verified.
    public enum Failure: Sendable, Equatable {
        /// Its upload slots are all taken (429): come back after its hint; no blame.
        case busy(retryAfter: Double?)
        /// It does not have a piece its availability listed (503, 404): listed wrongly, or its
        /// store is not open yet. Blamed (reported to HBS) only once it lasts past the peer
        /// patience, like `failed`: a store opens in moments, a lying map does not heal.
        case missing(String)
        /// A wrong status, length or range: it answered, but not with what was asked.
        case failed(String)
        /// Refused, reset, timed out, cut short: it may be restarting, or the network may be.
        /// Counted like `failed`, but no blame a host reports.
        case unreachable(String)
        /// Too slow: the caller gave the copy up past its abort deadline (`expired`).
        case tooSlow(String)
        /// Bytes that do not match the signed manifest, or more than were asked: never again.
        case corrupt(String)
        /// The caller stopped it (the download ends): no blame, the piece is wanted again.
        case cancelled
    }

    /// One copy of a piece in flight.
    struct Flight: Sendable {
        let piece: Int
        let source: Int
        let startedAt: Double
        let kind: Assignment.Kind
    }

    public let pieceCount: Int
    public let policy: SwarmPolicy
    public private(set) var have: PieceSet
    public private(set) var sources: [SwarmSource] = []
    private var flights: [Flight] = []
    /// Pieces with a copy in flight, and how many copies.
    private var fetching: PieceSet
    private var copies: [UInt8]
    /// Usable peers (not origins, not fallbacks) whose availability lists each piece.
    private var peerHolders: [UInt16]
    /// Usable origins (not fallbacks): they hold every piece.
    private var origins = 0
    /// Sources a piece failed on lately: others are asked first.
    private var tried: [Int: [Int]] = [:]
    private let seed: UInt64
    private let share: SeedShare?
    /// Peers taken in because they announced themselves (`announcedPeers` at most).
    private var announced = 0
    /// The last verified piece from a source other than a fallback (or the start).
    private var lastPrimaryProgress: Double
    /// How long a piece takes here, as observed (a moving average).
    public private(set) var typicalPieceSeconds: Double
    /// Per free-source pass: the pieces some free peer offers.
    private var offered: [UInt64]

    /// A download of `pieceCount` pieces, `have` already verified (resumed), starting at `now`.
    /// `seed` draws its tie order; `share` is a CDN seed's share (HBS's order says).
    public init(pieceCount: Int, have: PieceSet? = nil, policy: SwarmPolicy = .default, seed: UInt64, share: SeedShare? = nil, now: Double) {
        self.pieceCount = pieceCount
        self.policy = policy
        self.have = have ?? PieceSet(capacity: pieceCount)
        precondition(self.have.capacity == pieceCount)
        fetching = PieceSet(capacity: pieceCount)
        copies = [UInt8](repeating: 0, count: pieceCount)
        peerHolders = [UInt16](repeating: 0, count: pieceCount)
        self.seed = seed
        self.share = share
        lastPrimaryProgress = now
        typicalPieceSeconds = policy.initialPieceSeconds
        offered = [UInt64](repeating: 0, count: (pieceCount + 63) >> 6)
    }

    // MARK: Sources

    /// Adds a source (HBS named it). One already here that was dropped for failing, not
    /// banned, is given another chance (a peer may have restarted). Returns its index when it
    /// is new or revived: the caller then learns its availability (`setHoldings`).
    @discardableResult
    public mutating func addSource(_ url: String, fallback: Bool) -> Int? {
        addSource(url, fallback: fallback, announced: false)
    }

    /// A peer that fetches from this host announced itself (it is downloading the release too):
    /// taken in as a source, up to `announcedPeers` of them. Its index when it is new.
    public mutating func addAnnouncedPeer(_ url: String) -> Int? {
        guard announced < policy.announcedPeers, !have.isFull else { return nil }
        return addSource(url, fallback: false, announced: true)
    }

    private mutating func addSource(_ url: String, fallback: Bool, announced isAnnounced: Bool) -> Int? {
        let url = url.hasSuffix("/") ? String(url.dropLast()) : url
        if let index = sources.firstIndex(where: { $0.url == url }) {
            guard sources[index].removal != nil, !sources[index].banned else { return nil }
            sources[index].removal = nil
            sources[index].misbehaved = false
            sources[index].consecutiveFailures = 0
            sources[index].slowStrikes = 0
            sources[index].failingSince = nil
            sources[index].notBefore = -.infinity
            sources[index].holdings = sources[index].isFallback ? .everything : .unknown
            return index
        }
        sources.append(SwarmSource(url: url, isFallback: fallback))
        if isAnnounced { announced += 1 }
        return sources.count - 1
    }

    /// What a source holds, as its availability says (a snapshot), or `.everything` for one
    /// that publishes none (an origin).
    public mutating func setHoldings(_ index: Int, _ holdings: SwarmSource.Holdings) {
        guard sources[index].isUsable, !sources[index].isFallback else { return }
        count(index, -1)
        sources[index].holdings = holdings
        count(index, +1)
    }

    /// A source verified one more piece (its availability pushed it).
    public mutating func sourceHas(_ index: Int, piece: Int) {
        guard piece >= 0, piece < pieceCount, sources[index].isUsable, case .pieces(var set) = sources[index].holdings else { return }
        guard set.insert(piece) else { return }
        sources[index].holdings = .pieces(set)
        peerHolders[piece] &+= 1
    }

    /// Adds (`+1`) or removes (`-1`) what a usable source contributes to the piece counts.
    private mutating func count(_ index: Int, _ sign: Int) {
        let source = sources[index]
        guard source.isUsable, !source.isFallback else { return }
        switch source.holdings {
        case .everything: origins += sign
        case .unknown: break
        case .pieces(let set):
            for piece in set { peerHolders[piece] = sign > 0 ? peerHolders[piece] &+ 1 : peerHolders[piece] &- 1 }
        }
    }

    /// Sources given up on, with why (banned ones included).
    public var dropped: [SourceFailure] {
        sources.compactMap { source in source.removal.map { SourceFailure(source: source.url, reason: $0) } }
    }

    /// Sources given up on for what they did (lied, sent the wrong range or length, trickled,
    /// sent corrupt bytes), not for being unreachable: what a host reports to HBS.
    public var misbehaving: [SourceFailure] {
        sources.compactMap { source in
            source.misbehaved ? source.removal.map { SourceFailure(source: source.url, reason: $0) } : nil
        }
    }

    /// Every source is out: nothing can come any more.
    public var allSourcesRemoved: Bool { sources.allSatisfy { !$0.isUsable } }

    /// Verified bytes each source delivered.
    public var bytesBySource: [String: Int64] {
        Dictionary(sources.map { ($0.url, $0.deliveredBytes) }, uniquingKeysWith: +)
    }

    // MARK: Choosing

    public var isComplete: Bool { have.isFull }

    /// Whether a copy of `piece` from `source` is in flight (it was not cancelled meanwhile).
    public func isInFlight(piece: Int, from source: Int) -> Bool {
        flights.contains { $0.piece == piece && $0.source == source }
    }
    /// Copies in flight (hedges and endgame copies included).
    public var inFlight: Int { flights.count }

    /// Whether the download starves: no source but fallbacks is left, or none has delivered a
    /// verified piece for `fallbackPatience` (and `starveFactor` typical piece times).
    public func isStarving(now: Double) -> Bool {
        !sources.contains { $0.isUsable && !$0.isFallback } || now - lastPrimaryProgress >= patience
    }

    private var patience: Double { max(policy.fallbackPatience, policy.starveFactor * typicalPieceSeconds) }

    private func hedgeAfter(_ flight: Flight) -> Double {
        flight.startedAt + max(policy.hedgeFloor, policy.hedgeFactor * typicalPieceSeconds)
    }

    private func abortAfter(_ flight: Flight) -> Double {
        flight.startedAt + max(policy.abortFloor, policy.abortFactor * typicalPieceSeconds)
    }

    private func isOverdue(_ flight: Flight, now: Double) -> Bool { now >= hedgeAfter(flight) }

    private func isFree(_ source: SwarmSource, now: Double) -> Bool {
        source.isUsable && source.inFlight < policy.maxPerSource && source.notBefore <= now
    }

    /// Every piece slot is taken by a copy that is not overdue: news of availability changes
    /// nothing before a copy lands or `nextWake`.
    public func isSaturated(now: Double) -> Bool {
        !have.isFull && flights.reduce(0) { $0 + (isOverdue($1, now: now) ? 0 : 1) } >= policy.maxInFlight
    }

    /// The next piece to ask for and its source, marked in flight; nil when nothing can go
    /// now (ask again at `nextWake`, or when something happens). Call until nil.
    public mutating func next(now: Double) -> Assignment? {
        guard !have.isFull else { return nil }
        let active = flights.reduce(0) { $0 + (isOverdue($1, now: now) ? 0 : 1) }
        let starving = isStarving(now: now)
        if active < policy.maxInFlight, let fresh = nextFresh(now: now, starving: starving) {
            start(fresh, now: now)
            return fresh
        }
        guard flights.count < 2 * policy.maxInFlight, let second = nextCopy(now: now, starving: starving) else { return nil }
        start(second, now: now)
        return second
    }

    private mutating func start(_ assignment: Assignment, now: Double) {
        flights.append(Flight(piece: assignment.piece, source: assignment.source, startedAt: now, kind: assignment.kind))
        fetching.insert(assignment.piece)
        copies[assignment.piece] += 1
        sources[assignment.source].inFlight += 1
    }

    /// A seed asks its origin only for pieces none of its peers holds, unless it starves.
    private func originMayGive(_ piece: Int, starving: Bool) -> Bool {
        share == nil || starving || Int(peerHolders[piece]) <= policy.seedOriginHolders
    }

    /// The rarest wanted piece some free source offers, and that source.
    private mutating func nextFresh(now: Double, starving: Bool) -> Assignment? {
        var originFree = false, fallbackFree = false, peerFree = false
        for word in offered.indices { offered[word] = 0 }
        for source in sources where isFree(source, now: now) {
            if source.isFallback {
                fallbackFree = fallbackFree || starving
            } else {
                switch source.holdings {
                case .everything: originFree = true
                case .unknown: break
                case .pieces(let set):
                    peerFree = true
                    for word in offered.indices { offered[word] |= set.words[word] }
                }
            }
        }
        guard originFree || fallbackFree || peerFree else { return nil }
        var best = -1
        var bestKey = (UInt32.max, UInt64.max)
        let tail = pieceCount & 63
        for word in offered.indices {
            var wanted = ~(have.words[word] | fetching.words[word])
            if word == offered.count - 1 && tail != 0 { wanted &= (1 << UInt64(tail)) - 1 }
            if wanted == 0 { continue }
            let everything = originFree || fallbackFree
            var candidates = everything ? wanted : wanted & offered[word]
            while candidates != 0 {
                let piece = word << 6 + candidates.trailingZeroBitCount
                candidates &= candidates - 1
                let fromPeer = offered[word] & (1 << UInt64(piece & 63)) != 0
                guard fromPeer || fallbackFree || (originFree && originMayGive(piece, starving: starving)) else { continue }
                let key = (UInt32(peerHolders[piece]) + UInt32(origins), rank(piece))
                if key < bestKey {
                    best = piece
                    bestKey = key
                }
            }
        }
        guard best >= 0, let source = source(for: best, now: now, starving: starving, fallbacks: starving, excluding: -1)
        else { return nil }
        return Assignment(piece: best, source: source, kind: .fresh)
    }

    /// A second copy: of the oldest overdue piece with one copy in flight, or in the endgame
    /// of one of the last pieces.
    private func nextCopy(now: Double, starving: Bool) -> Assignment? {
        let left = pieceCount - have.count
        let endgame = left <= policy.endgamePieces && fetching.count == left
        for flight in flights where copies[flight.piece] == 1 {
            let overdue = isOverdue(flight, now: now)
            guard overdue || endgame else { continue }
            if let source = source(for: flight.piece, now: now, starving: starving, fallbacks: starving || overdue, excluding: flight.source) {
                return Assignment(piece: flight.piece, source: source, kind: overdue ? .hedge : .endgame)
            }
        }
        return nil
    }

    /// The source to ask for `piece`: a free one offering it, not `excluding`; those it has
    /// not failed on lately first, then peers (the least busy, ties spread by the piece) before
    /// origins before fallbacks (only when `fallbacks`).
    private func source(for piece: Int, now: Double, starving: Bool, fallbacks: Bool, excluding: Int) -> Int? {
        let failedOn = tried[piece] ?? []
        var best: Int?
        var bestKey = (Int.max, Int.max, Int.max, UInt64.max)
        for index in sources.indices where index != excluding {
            let source = sources[index]
            guard isFree(source, now: now), source.holdings.contains(piece) else { continue }
            let tier: Int
            if source.isFallback {
                guard fallbacks else { continue }
                tier = 2
            } else if source.isPeer {
                tier = 0
            } else {
                guard originMayGive(piece, starving: starving) else { continue }
                tier = 1
            }
            let key = (failedOn.contains(index) ? 1 : 0, tier, tier == 0 ? source.inFlight : index,
                       tier == 0 ? SplitMix64.mix(seed ^ UInt64(index) << 32 ^ UInt64(piece)) : 0)
            if key < bestKey {
                best = index
                bestKey = key
            }
        }
        return best
    }

    /// This download's tie order: its seed share first, then a random order of its own.
    private func rank(_ piece: Int) -> UInt64 {
        let random = SplitMix64.value(seed: seed, index: UInt64(piece)) >> 1
        return share.map { $0.contains(piece) ? random : random | 1 << 63 } ?? random
    }

    // MARK: Outcomes

    private mutating func land(_ piece: Int, from source: Int) -> Flight? {
        guard let position = flights.firstIndex(where: { $0.piece == piece && $0.source == source }) else { return nil }
        let flight = flights.remove(at: position)
        copies[piece] -= 1
        if copies[piece] == 0 { fetching.remove(piece) }
        sources[source].inFlight -= 1
        return flight
    }

    /// `piece` arrived from `source` verified (`bytes` long). Returns the sources of its other
    /// copies still in flight: the caller cancels them (they are no longer counted).
    public mutating func delivered(piece: Int, from source: Int, bytes: Int64, now: Double) -> [Int] {
        guard let flight = land(piece, from: source) else { return [] }
        let seconds = now - flight.startedAt
        typicalPieceSeconds = 0.75 * typicalPieceSeconds + 0.25 * min(seconds, 4 * typicalPieceSeconds)
        sources[source].deliveredBytes += bytes
        sources[source].consecutiveFailures = 0
        sources[source].failingSince = nil
        if !isOverdue(flight, now: now) { sources[source].slowStrikes = 0 }
        if !sources[source].isFallback { lastPrimaryProgress = now }
        have.insert(piece)
        tried[piece] = nil
        var losers: [Int] = []
        while let other = flights.firstIndex(where: { $0.piece == piece }) {
            let loser = flights[other]
            _ = land(piece, from: loser.source)
            losers.append(loser.source)
            if isOverdue(loser, now: now) { strike(loser.source, reason: "overtaken by another holder") }
        }
        return losers
    }

    /// A request for `piece` to `source` ended without the piece.
    public mutating func failed(piece: Int, from source: Int, _ failure: Failure, now: Double) {
        guard land(piece, from: source) != nil else { return }
        switch failure {
        case .busy(let hint):
            sources[source].notBefore = now + min(5, max(0, hint ?? policy.busyRetry))
        case .missing(let reason):
            if case .pieces(var set) = sources[source].holdings, set.remove(piece) {
                sources[source].holdings = .pieces(set)
                peerHolders[piece] &-= 1
            }
            tried[piece, default: []].append(source)
            fail(source, reason: reason, now: now)
        case .failed(let reason):
            tried[piece, default: []].append(source)
            fail(source, reason: reason, now: now)
        case .unreachable(let reason):
            tried[piece, default: []].append(source)
            fail(source, reason: reason, now: now, misbehaved: false)
        case .tooSlow(let reason):
            tried[piece, default: []].append(source)
            strike(source, reason: reason)
            if sources[source].isUsable { fail(source, reason: reason, now: now) }
        case .corrupt(let reason):
            tried[piece, default: []].append(source)
            ban(source, reason: reason)
        case .cancelled:
            break
        }
    }

    /// A failure that may pass: back off (200 ms, doubling, at most 2 s), and drop the source
    /// after `failureLimit` in a row (a peer only once it has failed for `peerPatience`).
    private mutating func fail(_ index: Int, reason: String, now: Double, misbehaved: Bool = true) {
        sources[index].consecutiveFailures += 1
        let failures = sources[index].consecutiveFailures
        let since = sources[index].failingSince ?? now
        sources[index].failingSince = since
        if failures >= policy.failureLimit && (!sources[index].isPeer || now - since >= policy.peerPatience) {
            remove(index, reason: "\(reason) (\(failures) failures in a row)", misbehaved: misbehaved)
        } else {
            sources[index].notBefore = now + min(2, 0.2 * Double(1 << min(failures - 1, 4)))
        }
    }

    private mutating func strike(_ index: Int, reason: String) {
        sources[index].slowStrikes += 1
        if sources[index].slowStrikes >= policy.slowLimit {
            remove(index, reason: "too slow: \(reason) (\(sources[index].slowStrikes) times in a row)")
        }
    }

    /// Bytes that do not match the signed manifest: never again in this download.
    private mutating func ban(_ index: Int, reason: String) {
        remove(index, reason: "banned: \(reason)")
        sources[index].banned = true
    }

    /// Drops a source for what it did outside a piece request: its availability was no
    /// availability (`misbehaved`), or it was unreachable for too long.
    public mutating func drop(_ index: Int, reason: String, misbehaved: Bool) { remove(index, reason: reason, misbehaved: misbehaved) }

    private mutating func remove(_ index: Int, reason: String, misbehaved: Bool = true) {
        guard sources[index].isUsable else { return }
        count(index, -1)
        sources[index].removal = reason
        sources[index].misbehaved = misbehaved
    }

    // MARK: Time

    /// Copies in flight past their abort deadline: the caller stops each and reports it
    /// `.tooSlow`.
    public func expired(now: Double) -> [(piece: Int, source: Int)] {
        flights.filter { now >= abortAfter($0) }.map { ($0.piece, $0.source) }
    }

    /// The next moment something may change without news from outside: a copy becomes
    /// overdue or expires, a source's back-off ends, the download starts starving.
    public func nextWake(now: Double) -> Double? {
        var soonest = Double.infinity
        for flight in flights {
            let hedge = hedgeAfter(flight)
            if hedge > now && copies[flight.piece] == 1 { soonest = min(soonest, hedge) }
            soonest = min(soonest, abortAfter(flight))
        }
        for source in sources where source.isUsable && source.notBefore > now { soonest = min(soonest, source.notBefore) }
        if sources.contains(where: { $0.isFallback && $0.isUsable }) && !isStarving(now: now) {
            soonest = min(soonest, lastPrimaryProgress + patience)
        }
        return soonest.isFinite ? max(soonest, now) : nil
    }
}
