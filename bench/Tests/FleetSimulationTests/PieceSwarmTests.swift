import Testing

@testable import FleetSimulation

/// The virtual agents' piece policy: rarest first among what a source holds, the in-flight
/// limits, and fallbacks only for what nobody else offers, after the patience.
@Suite struct PieceSwarmTests {
    /// Host 0 downloads; hosts 1... are peers; node `hosts` is a CDN.
    private func swarm(hosts: Int = 4, pieces: Int = 4, policy: SwarmPolicy = SwarmPolicy()) -> PieceSwarm {
        PieceSwarm(hostCount: hosts, pieceCount: pieces, policy: policy, seed: 7)
    }

    private func give(_ swarm: inout PieceSwarm, _ host: Int, _ pieces: [Int]) {
        var ignored: [Int32] = []
        for piece in pieces { swarm.grant(piece, to: host, interested: &ignored) }
    }

    private func fill(_ swarm: inout PieceSwarm, _ host: Int = 0, now: Double = 0) -> [(source: Int, piece: Int)] {
        var picks: [PieceSwarm.Pick] = []
        swarm.fill(host, now: now, picks: &picks)
        return picks.map { (Int($0.source), Int($0.piece)) }
    }

    @Test func theRarestPieceAmongTheSourcesComesFirst() {
        var swarm = swarm()
        give(&swarm, 1, [0, 1, 2])
        give(&swarm, 2, [1, 2])
        swarm.begin(0, now: 0)
        let added = [1, 2].map { swarm.add(source: $0, isCDN: false, isFallback: false, to: 0) }
        #expect(added == [true, true])
        let again = swarm.add(source: 1, isCDN: false, isFallback: false, to: 0)
        #expect(!again)
        let picks = fill(&swarm)
        // Peer 1's first piece is 0, held by it alone; then 1 and 2 from either, 2 per peer.
        #expect(picks.first! == (1, 0))
        #expect(picks.count == 3)
        #expect(Set(picks.map(\.piece)) == [0, 1, 2])
        #expect(picks.filter { $0.source == 1 }.count <= 2)
    }

    @Test func piecesAreLimitedPerPeerAndInAll() {
        var swarm = swarm(hosts: 7, pieces: 20)
        for peer in 1...6 { give(&swarm, peer, Array(0..<20)) }
        swarm.begin(0, now: 0)
        _ = swarm.add(source: 1, isCDN: false, isFallback: false, to: 0)
        #expect(fill(&swarm).count == 2)
        for peer in 2...6 { _ = swarm.add(source: peer, isCDN: false, isFallback: false, to: 0) }
        let more = fill(&swarm)
        #expect(more.count == 6)  // 8 in flight in all
        #expect(Set(more.map(\.piece)).count == 6)
        #expect(swarm.inFlight[0] == 8)
    }

    @Test func aFallbackWaitsItsPatienceAndServesOnlyWhatNobodyElseOffers() {
        var swarm = swarm(hosts: 2, pieces: 4)
        give(&swarm, 1, [0])
        swarm.begin(0, now: 10)
        _ = swarm.add(source: 1, isCDN: false, isFallback: false, to: 0)
        _ = swarm.add(source: 2, isCDN: true, isFallback: true, to: 0)  // node 2: the CDN
        #expect(fill(&swarm, now: 10).map(\.piece) == [0])  // from the peer; the CDN waits
        #expect(fill(&swarm, now: 11.9).isEmpty)
        #expect(swarm.fallbackDue(0) == 12)
        let late = fill(&swarm, now: 12)
        #expect(late.count == 2)
        #expect(late.allSatisfy { $0.source == 2 && $0.piece != 0 })
    }

    @Test func aCDNSourceThatIsNoFallbackServesAtOnce() {
        var swarm = swarm(hosts: 1, pieces: 8)
        swarm.begin(0, now: 0)
        _ = swarm.add(source: 1, isCDN: true, isFallback: false, to: 0)
        #expect(fill(&swarm).count == 2)
    }

    @Test func aPeerThatVerifiesANeededPieceWakesItsSubscribers() {
        var swarm = swarm(hosts: 3, pieces: 4)
        swarm.begin(0, now: 0)
        _ = swarm.add(source: 1, isCDN: false, isFallback: false, to: 0)
        #expect(fill(&swarm).isEmpty)  // the peer holds nothing yet
        var interested: [Int32] = []
        swarm.grant(3, to: 1, interested: &interested)
        #expect(interested == [0])
        #expect(fill(&swarm).map(\.piece) == [3])
        // A piece the host is already fetching wakes nobody.
        interested = []
        swarm.grant(3, to: 2, interested: &interested)
        #expect(interested.isEmpty)
    }

    @Test func verifiedPiecesFreeTheirSlotAndCountPerSource() {
        var swarm = swarm(hosts: 2, pieces: 2)
        give(&swarm, 1, [0, 1])
        swarm.begin(0, now: 0)
        _ = swarm.add(source: 1, isCDN: false, isFallback: false, to: 0)
        let picks = fill(&swarm)
        #expect(picks.count == 2)
        var interested: [Int32] = []
        for pick in picks { swarm.verified(piece: pick.piece, at: 0, from: 1, bytes: 100, interested: &interested) }
        #expect(swarm.holdsAll(0))
        #expect(swarm.inFlight[0] == 0)
        #expect(swarm.sources[0][0].bytes == 200)
    }

    @Test func randomTieBreaksSpreadTheFirstPiecesOverHosts() {
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
