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
        var retry = Double.infinity
        swarm.fill(host, now: now, picks: &picks, retry: &retry)
        return picks.map { (Int($0.source), Int($0.piece)) }
    }

    private func addPeers(_ swarm: inout PieceSwarm, _ peers: [Int], to host: Int = 0) {
        for peer in peers { _ = swarm.add(source: peer, isCDN: false, isFallback: false, to: host) }
    }

    @Test func theRarestPieceAmongTheSourcesComesFirst() {
        var policy = SwarmPolicy()
        policy.uploadSlots = 2
        var swarm = swarm(policy: policy)
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
        var policy = SwarmPolicy()
        policy.uploadSlots = 8
        var swarm = swarm(hosts: 7, pieces: 20, policy: policy)
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

    @Test func peersGoBeforeTheCDNAndTheLeastBusyFirst() {
        var policy = SwarmPolicy()
        policy.uploadSlots = 2
        var swarm = swarm(hosts: 3, pieces: 4, policy: policy)
        give(&swarm, 1, [0, 1, 2, 3])  // whole: still a peer
        give(&swarm, 2, [0, 1])
        swarm.begin(0, now: 0)
        _ = swarm.add(source: 3, isCDN: true, isFallback: false, to: 0)  // node 3: a CDN, listed first
        addPeers(&swarm, [1, 2])
        let picks = fill(&swarm)
        // Every piece is held by the CDN; 2 and 3 also by peer 1, 0 and 1 by both peers: rarer
        // 2 and 3 go first, to peer 1; then 0 and 1 to peer 2, the less busy; nothing to the CDN
        // while a peer can take it.
        #expect(picks.count == 4)
        #expect(Set(picks.prefix(2).map(\.piece)) == [2, 3])
        for pick in picks.prefix(2) { #expect(pick.source == 1) }
        for pick in picks.dropFirst(2) { #expect(pick.source == 2) }
        // Peers full (2 each): the CDN takes the rest.
        #expect(fill(&swarm).isEmpty)  // nothing left to ask for
    }

    @Test func aPeerWithEveryUploadSlotTakenRefusesForAMoment() {
        var policy = SwarmPolicy()
        policy.uploadSlots = 2
        policy.busyBackoff = 0.1
        var swarm = swarm(hosts: 4, pieces: 8, policy: policy)
        give(&swarm, 3, Array(0..<8))
        for host in 0...1 {
            swarm.begin(host, now: 0)
            addPeers(&swarm, [3], to: host)
        }
        #expect(fill(&swarm, 0).count == 2)  // peer 3's two upload slots
        var picks: [PieceSwarm.Pick] = []
        var retry = Double.infinity
        swarm.fill(1, now: 0, picks: &picks, retry: &retry)
        #expect(picks.isEmpty)
        #expect(retry == 0.1)
        swarm.verified(piece: 0, at: 0, from: 3, bytes: 1, now: 0.05)
        swarm.fill(1, now: 0.05, picks: &picks, retry: &retry)
        #expect(picks.isEmpty)  // still backing off
        swarm.fill(1, now: 0.1, picks: &picks, retry: &retry)
        #expect(picks.count == 1)
    }

    @Test func aFallbackWaitsUntilTheDownloadStarvesAndServesOnlyWhatNobodyElseHolds() {
        var policy = SwarmPolicy()
        policy.fallbackPatience = 2
        var swarm = swarm(hosts: 2, pieces: 4, policy: policy)
        give(&swarm, 1, [0])
        swarm.begin(0, now: 10)
        addPeers(&swarm, [1])
        _ = swarm.add(source: 2, isCDN: true, isFallback: true, to: 0)  // node 2: the CDN
        #expect(fill(&swarm, now: 10).map(\.piece) == [0])  // from the peer; the CDN waits
        #expect(fill(&swarm, now: 13).isEmpty)  // a piece in flight from a peer: not starving
        let starts = swarm.verified(piece: 0, at: 0, from: 1, bytes: 1, now: 14)
        #expect(starts)
        #expect(swarm.fallbackDue(0) == 16)
        #expect(fill(&swarm, now: 15.9).isEmpty)
        let late = fill(&swarm, now: 16)
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
        var policy = SwarmPolicy()
        policy.uploadSlots = 2
        var swarm = swarm(hosts: 2, pieces: 2, policy: policy)
        give(&swarm, 1, [0, 1])
        swarm.begin(0, now: 0)
        addPeers(&swarm, [1])
        let picks = fill(&swarm)
        #expect(picks.count == 2)
        for pick in picks { swarm.verified(piece: pick.piece, at: 0, from: 1, bytes: 100, now: 1) }
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
            var retry = Double.infinity
            swarm.fill(host, now: 0, picks: &picks, retry: &retry)
            firsts.insert(Int(picks[0].piece))
        }
        #expect(firsts.count >= 7)
    }
}
