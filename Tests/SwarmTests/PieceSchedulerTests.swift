import Swarm
import Testing
import Wire

/// The swarm policy's choices, one rule at a time: rarest first, peers before origins before
/// fallbacks, starvation by progress, deadlines and hedges, the endgame, busy hints, and when
/// a source is out.
@Suite struct PieceSchedulerTests {
    /// The defaults, but several pieces in flight, two per source: room to see the order of
    /// the choices.
    static var wide: SwarmPolicy {
        var policy = SwarmPolicy()
        policy.maxInFlight = 8
        policy.maxPerSource = 2
        return policy
    }

    func scheduler(_ pieces: Int, policy: SwarmPolicy = Self.wide, share: SeedShare? = nil, seed: UInt64 = 1) -> PieceScheduler {
        PieceScheduler(pieceCount: pieces, policy: policy, seed: seed, share: share, now: 0)
    }

    /// Drains every assignment possible now.
    func drain(_ scheduler: inout PieceScheduler, now: Double) -> [PieceScheduler.Assignment] {
        var all: [PieceScheduler.Assignment] = []
        while let next = scheduler.next(now: now) { all.append(next) }
        return all
    }

    @Test func pieceSetTextAndIteration() {
        let set = PieceSet(capacity: 70, [0, 3, 64, 69])
        #expect(Array(set) == [0, 3, 64, 69] && set.count == 4)
        #expect(PieceSet(text: set.text, capacity: 70) == set)
        #expect(PieceSet(text: Array("01x".utf8), capacity: 3) == nil, "not a map")
        #expect(PieceSet(text: Array("01".utf8), capacity: 3) == nil, "wrong length")
        #expect(PieceSet(text: [UInt8](), capacity: 3)?.isEmpty == true, "empty: holds none yet")
        #expect(PieceSet(full: 70).isFull && Array(PieceSet(full: 70)).count == 70)
    }

    @Test func rarestFirstAndPeersBeforeOrigins() {
        var policy = Self.wide
        policy.maxPerSource = 8
        var swarm = scheduler(3, policy: policy)
        let a = swarm.addSource("http://a", fallback: false)!
        let b = swarm.addSource("http://b/", fallback: false)!
        let origin = swarm.addSource("http://origin", fallback: false)!
        #expect(swarm.sources[b].url == "http://b", "trailing slash dropped")
        swarm.setHoldings(a, .pieces(PieceSet(capacity: 3, [0, 1])))
        swarm.setHoldings(b, .pieces(PieceSet(capacity: 3, [0])))
        swarm.setHoldings(origin, .everything)
        let picks = drain(&swarm, now: 0).filter { $0.kind == .fresh }
        #expect(picks.map(\.piece) == [2, 1, 0], "held by 1, 2, 3 sources")
        #expect(picks[0].source == origin, "only the origin holds piece 2")
        #expect(picks[1].source == a && picks[2].source != origin, "peers before the origin")
    }

    @Test func unknownAvailabilityIsNotAsked() {
        var swarm = scheduler(2)
        _ = swarm.addSource("http://peer", fallback: false)
        #expect(swarm.next(now: 0) == nil)
    }

    /// Fallbacks only once the download starves, and starving is measured by verified pieces:
    /// a peer with copies in flight that never arrive does not keep the fallback away.
    @Test func theFallbackOnceTheDownloadStarvesByProgress() {
        var policy = Self.wide
        policy.initialPieceSeconds = 0.5
        policy.hedgeFactor = 100
        var swarm = scheduler(4, policy: policy)
        let peer = swarm.addSource("http://peer", fallback: false)!
        let fallback = swarm.addSource("http://cdn", fallback: true)!
        swarm.setHoldings(peer, .pieces(PieceSet(full: 4)))
        let first = drain(&swarm, now: 0)
        #expect(first.count == 2 && first.allSatisfy { $0.source == peer }, "two per source, none from the fallback")
        let patience = policy.fallbackPatience
        #expect(swarm.nextWake(now: 0) == patience, "starving comes first (3 s, more than 4 piece times)")
        #expect(!swarm.isStarving(now: patience - 0.01))
        #expect(swarm.isStarving(now: patience), "copies in flight, none arrived: starving")
        let later = drain(&swarm, now: patience)
        #expect(later.contains { $0.source == fallback && $0.kind == .fresh }, "the fallback gives the pieces the peer is stuck on or not asked for")
        _ = swarm.delivered(piece: first[0].piece, from: peer, bytes: 1, now: patience + 0.1)
        #expect(!swarm.isStarving(now: patience + 0.2), "a verified piece from the peer: progress")
    }

    /// A copy past `hedgeFactor` typical piece times is asked of a second holder; the first to
    /// arrive wins, the other is cancelled; a source overtaken `slowLimit` times is dropped.
    @Test func overduePiecesAreHedgedAndSlowSourcesDropped() {
        var policy = Self.wide
        policy.maxInFlight = 1
        policy.maxPerSource = 1
        policy.initialPieceSeconds = 1
        policy.slowLimit = 2
        var swarm = scheduler(3, policy: policy)
        let slow = swarm.addSource("http://slow", fallback: false)!
        let fast = swarm.addSource("http://fast", fallback: false)!
        swarm.setHoldings(slow, .pieces(PieceSet(full: 3)))
        swarm.setHoldings(fast, .pieces(PieceSet(capacity: 3)))
        var now = 0.0
        for round in 0..<2 {
            let first = swarm.next(now: now)!
            #expect(first.source == slow && first.kind == .fresh)
            #expect(swarm.next(now: now) == nil, "one in flight at most")
            swarm.sourceHas(fast, piece: first.piece)
            let overdueAt = now + 3 * swarm.typicalPieceSeconds
            #expect(swarm.next(now: overdueAt - 0.01) == nil, "not overdue yet")
            let hedge = swarm.next(now: overdueAt)!
            #expect(hedge == .init(piece: first.piece, source: fast, kind: .hedge), "round \(round)")
            let losers = swarm.delivered(piece: first.piece, from: fast, bytes: 1, now: overdueAt + 0.1)
            #expect(losers == [slow], "the slow copy is cancelled")
            now = overdueAt + 0.2
        }
        #expect(!swarm.sources[slow].isUsable)
        #expect(swarm.dropped.first?.reason.hasPrefix("too slow") == true)
    }

    @Test func expiredCopiesAreGivenUp() {
        var policy = Self.wide
        policy.initialPieceSeconds = 0.1
        policy.abortFloor = 1
        var swarm = scheduler(1, policy: policy)
        let peer = swarm.addSource("http://peer", fallback: false)!
        swarm.setHoldings(peer, .everything)
        let copy = swarm.next(now: 0)!
        #expect(swarm.expired(now: 0.99).isEmpty)
        #expect(swarm.expired(now: 1).map(\.piece) == [copy.piece])
        swarm.failed(piece: copy.piece, from: peer, .tooSlow("1 s for one piece"), now: 1)
        #expect(swarm.inFlight == 0 && swarm.sources[peer].isUsable, "one strike, one failure: still in")
    }

    @Test func theEndgameAsksTwoHolders() {
        var swarm = scheduler(2)
        let a = swarm.addSource("http://a", fallback: false)!
        let b = swarm.addSource("http://b", fallback: false)!
        swarm.setHoldings(a, .pieces(PieceSet(full: 2)))
        swarm.setHoldings(b, .pieces(PieceSet(full: 2)))
        let picks = drain(&swarm, now: 0)
        #expect(picks.filter { $0.kind == .fresh }.count == 2)
        #expect(picks.filter { $0.kind == .endgame }.count == 2, "both last pieces asked twice")
        #expect(Set(picks.map { "\($0.piece)/\($0.source)" }).count == 4, "never twice from one holder")
    }

    /// A busy peer says when to come back: it is left alone exactly that long, without blame.
    @Test func aBusyHintIsFollowed() {
        var swarm = scheduler(1)
        let peer = swarm.addSource("http://peer", fallback: false)!
        swarm.setHoldings(peer, .pieces(PieceSet(full: 1)))
        let copy = swarm.next(now: 0)!
        swarm.failed(piece: copy.piece, from: peer, .busy(retryAfter: 0.03), now: 0)
        #expect(swarm.next(now: 0.029) == nil)
        #expect(swarm.nextWake(now: 0.01) == 0.03)
        #expect(swarm.next(now: 0.03)?.source == peer)
        #expect(swarm.dropped.isEmpty)
    }

    /// A piece a peer listed but does not have: not asked of it again, and a peer failing that
    /// way for `peerPatience` is dropped; a corrupt piece bans at once, and a banned source is
    /// never revived, a dropped one is.
    @Test func lyingAndCorruptSources() {
        var policy = Self.wide
        policy.failureLimit = 2
        policy.peerPatience = 1
        var swarm = scheduler(4, policy: policy)
        let liar = swarm.addSource("http://liar", fallback: false)!
        swarm.setHoldings(liar, .pieces(PieceSet(full: 4)))
        var now = 0.0
        while swarm.sources[liar].isUsable && now < 10 {
            if let copy = swarm.next(now: now) { swarm.failed(piece: copy.piece, from: liar, .missing("HTTP 404"), now: now) }
            now += 0.1
        }
        #expect(!swarm.sources[liar].isUsable && now >= 1, "dropped after its patience")
        #expect(swarm.addSource("http://liar", fallback: false) == liar, "dropped, not banned: revived when offered again")

        let corrupt = swarm.addSource("http://corrupt", fallback: false)!
        swarm.setHoldings(corrupt, .everything)
        swarm.setHoldings(liar, .pieces(PieceSet(capacity: 4)))
        let copy = swarm.next(now: now)!
        #expect(copy.source == corrupt)
        swarm.failed(piece: copy.piece, from: corrupt, .corrupt("sha256 mismatch"), now: now)
        #expect(swarm.dropped.contains { $0.source == "http://corrupt" && $0.reason.hasPrefix("banned") })
        #expect(swarm.addSource("http://corrupt", fallback: false) == nil, "banned for good")
        #expect(swarm.allSourcesRemoved == false)
    }

    /// A source out for being unreachable (it may be restarting) is dropped like any, but only
    /// one that misbehaved is what a host reports to HBS.
    @Test func onlyMisbehaviourIsReported() {
        var policy = Self.wide
        policy.failureLimit = 1
        policy.maxPerSource = 1
        var swarm = scheduler(2, policy: policy)
        let gone = swarm.addSource("http://gone", fallback: false)!
        let liar = swarm.addSource("http://liar", fallback: false)!
        swarm.setHoldings(gone, .everything)
        swarm.setHoldings(liar, .everything)
        let first = swarm.next(now: 0)!, second = swarm.next(now: 0)!
        swarm.failed(piece: first.piece, from: first.source, first.source == gone ? .unreachable("refused") : .failed("HTTP 500"), now: 0)
        swarm.failed(piece: second.piece, from: second.source, second.source == gone ? .unreachable("refused") : .failed("HTTP 500"), now: 0)
        #expect(swarm.dropped.count == 2)
        #expect(swarm.misbehaving.map(\.source) == ["http://liar"])
    }

    /// A CDN seed: its share first, and the CDN only for pieces none of its peers holds.
    @Test func aSeedTakesItsShareAndLeavesPeerPiecesToPeers() {
        var policy = Self.wide
        policy.maxPerSource = 16
        policy.maxInFlight = 16
        var swarm = scheduler(8, policy: policy, share: SeedShare(index: 1, count: 4))
        let cdn = swarm.addSource("http://cdn", fallback: false)!
        let peer = swarm.addSource("http://peer", fallback: false)!
        swarm.setHoldings(cdn, .everything)
        swarm.setHoldings(peer, .pieces(PieceSet(capacity: 8, [2])))
        let picks = drain(&swarm, now: 0)
        #expect(Set(picks.prefix(2).map(\.piece)) == [1, 5], "pieces 1 and 5 (its share) first")
        #expect(picks.first { $0.piece == 2 }?.source == peer, "piece 2 from the peer that holds it")
        #expect(!picks.contains { $0.piece == 2 && $0.source == cdn }, "never from the CDN")
        #expect(picks.filter { $0.kind == .fresh }.count == 8)
    }

    @Test func sameSeedSameChoices() {
        func run(_ seed: UInt64) -> [Int] {
            var swarm = scheduler(64, seed: seed)
            let origin = swarm.addSource("http://origin", fallback: false)!
            swarm.setHoldings(origin, .everything)
            return drain(&swarm, now: 0).map(\.piece)
        }
        #expect(run(7) == run(7))
        #expect(run(7) != run(8), "each download its own order")
    }
}
