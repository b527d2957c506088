import Testing

@testable import FleetSimulation

/// The virtual agents' piece policy, as the real downloader's: rarest first over every
/// source, peers known from their polled piece maps, the in-flight limits, fallbacks only for
/// what nobody else holds, after the patience.
@Suite struct PieceSwarmTests {
    /// Host 0 downloads; hosts 1... are peers; node `hosts` is a CDN.
    private func swarm(hosts: Int = 4, pieces: Int = 4, policy: SwarmPolicy = SwarmPolicy()) -> PieceSwarm {
        PieceSwarm(hostCount: hosts, pieceCount: pieces, policy: policy, seed: 7)
    }

    private func give(_ swarm: inout PieceSwarm, _ host: Int, _ pieces: [Int]) {
        for piece in pieces { swarm.grant(piece, to: host) }
    }

    private func fill(_ swarm: inout PieceSwarm, _ host: Int = 0, now: Double = 0) -> [(source: Int, piece: Int)] {
        var picks: [PieceSwarm.Pick] = []
        swarm.fill(host, now: now, picks: &picks)
        return picks.map { (Int($0.source), Int($0.piece)) }
    }

    private func addPeers(_ swarm: inout PieceSwarm, _ peers: [Int], to host: Int = 0) {
        for peer in peers { _ = swarm.add(source: peer, isCDN: false, isFallback: false, to: host) }
    }

    @Test func theRarestPieceAmongTheSourcesComesFirst() {
        var swarm = swarm()
        give(&swarm, 1, [0, 1, 2])
        give(&swarm, 2, [1, 2])
        swarm.begin(0, now: 0)
        addPeers(&swarm, [1, 2])
        let picks = fill(&swarm)
        // Piece 0 is held by peer 1 alone: first. Then 1 and 2, held by both.
        #expect(picks.first! == (1, 0))
        #expect(picks.count == 3)
        #expect(Set(picks.map(\.piece)) == [0, 1, 2])
        #expect(picks.filter { $0.source == 1 }.count <= 2)
    }

    @Test func aSourceIsAddedOnce() {
        var swarm = swarm()
        swarm.begin(0, now: 0)
        let first = swarm.add(source: 1, isCDN: false, isFallback: false, to: 0)
        let again = swarm.add(source: 1, isCDN: false, isFallback: false, to: 0)
        let itself = swarm.add(source: 0, isCDN: false, isFallback: false, to: 0)
        #expect(first && !again && !itself)
    }

    @Test func piecesAreLimitedPerSourceAndInAll() {
        var swarm = swarm(hosts: 7, pieces: 20)
        for peer in 1...6 { give(&swarm, peer, Array(0..<20)) }
        swarm.begin(0, now: 0)
        addPeers(&swarm, [1])
        #expect(fill(&swarm).count == 2)
        addPeers(&swarm, Array(2...6))
        let more = fill(&swarm)
        #expect(more.count == 6)  // 8 in flight in all
        #expect(Set(more.map(\.piece)).count == 6)
        #expect(swarm.inFlight[0] == 8)
    }

    @Test func aPeersNewPiecesAreKnownAtTheNextPoll() {
        var swarm = swarm(hosts: 3, pieces: 4)
        swarm.begin(0, now: 0)
        addPeers(&swarm, [1])
        #expect(fill(&swarm).isEmpty)  // the peer holds nothing yet
        give(&swarm, 1, [3])
        #expect(fill(&swarm).isEmpty)  // not on its map as last read
        let learnt = swarm.poll(0)
        #expect(learnt)
        #expect(fill(&swarm).map(\.piece) == [3])
        let again = swarm.poll(0)
        #expect(!again)  // nothing new
    }

    @Test func partialPeersGoFirstThenWholeSourcesInOrder() {
        var swarm = swarm(hosts: 3, pieces: 4)
        give(&swarm, 1, [0, 1, 2, 3])  // whole
        give(&swarm, 2, [0, 1])
        swarm.begin(0, now: 0)
        addPeers(&swarm, [1, 2])
        let picks = fill(&swarm)
        // 2 and 3 are rarer (peer 1 only); 0 and 1 are held by both and go to peer 2, the partial one.
        #expect(picks.count == 4)
        for pick in picks where pick.piece < 2 { #expect(pick.source == 2) }
        for pick in picks where pick.piece >= 2 { #expect(pick.source == 1) }
    }

    @Test func aFallbackWaitsItsPatienceAndServesOnlyWhatNobodyElseHolds() {
        var swarm = swarm(hosts: 2, pieces: 4)
        give(&swarm, 1, [0])
        swarm.begin(0, now: 10)
        addPeers(&swarm, [1])
        _ = swarm.add(source: 2, isCDN: true, isFallback: true, to: 0)  // node 2: the CDN
        #expect(fill(&swarm, now: 10).map(\.piece) == [0])  // from the peer; the CDN waits
        #expect(fill(&swarm, now: 11.9).isEmpty)
        #expect(swarm.fallbackDue(0) == 12)
        let late = fill(&swarm, now: 12)
        #expect(late.count == 2)
        #expect(late.allSatisfy { $0.source == 2 && $0.piece != 0 })
    }

    @Test func aFallbackServesAtOnceWhenTheOrderListsNothingElse() {
        var swarm = swarm(hosts: 1, pieces: 8)
        swarm.begin(0, now: 0)
        _ = swarm.add(source: 1, isCDN: true, isFallback: true, to: 0)
        #expect(fill(&swarm).count == 2)
    }

    @Test func aCDNSourceThatIsNoFallbackServesAtOnce() {
        var swarm = swarm(hosts: 1, pieces: 8)
        swarm.begin(0, now: 0)
        _ = swarm.add(source: 1, isCDN: true, isFallback: false, to: 0)
        #expect(fill(&swarm).count == 2)
    }

    @Test func verifiedPiecesFreeTheirSlotAndCountPerSource() {
        var swarm = swarm(hosts: 2, pieces: 2)
        give(&swarm, 1, [0, 1])
        swarm.begin(0, now: 0)
        addPeers(&swarm, [1])
        let picks = fill(&swarm)
        #expect(picks.count == 2)
        for pick in picks { swarm.verified(piece: pick.piece, at: 0, from: 1, bytes: 100) }
        #expect(swarm.holdsAll(0))
        #expect(swarm.inFlight[0] == 0)
        #expect(swarm.sources[0][0].bytes == 200)
    }

    @Test func eachDownloadBreaksTiesInAnOrderOfItsOwn() {
        // Ten hosts fed by one CDN, every piece equally rare: their first picks differ.
        var swarm = PieceSwarm(hostCount: 10, pieceCount: 64, policy: SwarmPolicy(), seed: 3)
        var firsts = Set<Int>()
        for host in 0..<10 {
            swarm.begin(host, now: 0)
            _ = swarm.add(source: 10, isCDN: true, isFallback: false, to: host)
            var picks: [PieceSwarm.Pick] = []
            swarm.fill(host, now: 0, picks: &picks)
            firsts.insert(Int(picks[0].piece))
        }
        #expect(firsts.count >= 7)
    }
}
