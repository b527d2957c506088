import Swarm
import Testing

@testable import FleetSimulation

/// What the simulator models around the agent's own swarm policy: availability that arrives
/// when pushed (a snapshot after adding a source, each piece as it is verified), a peer's
/// upload slots and its short queue, busy answers with a hint, cancelled losers, the cap.
@Suite struct PieceSwarmTests {
    /// Hosts 0..<hosts; node `hosts` is a CDN.
    private func swarm(hosts: Int = 4, pieces: Int = 4, policy: SwarmPolicy = .default, paced: Double? = nil) -> PieceSwarm {
        PieceSwarm(hostCount: hosts, nodeCount: hosts + 1, pieceCount: pieces, policy: policy, pacedDownload: paced, uplink: 1, seed: 7)
    }

    /// Gives `host` the pieces, as verified transfers from the CDN would.
    private func give(_ swarm: inout PieceSwarm, _ host: Int, _ pieces: [Int]) {
        var actions: [PieceSwarm.Action] = []
        for piece in pieces {
            _ = swarm.completed(.init(source: Int32(swarm.hostCount), receiver: Int32(host), piece: Int32(piece)), bytes: 1, now: 0, actions: &actions)
        }
    }

    private func starts(_ actions: [PieceSwarm.Action]) -> [PieceSwarm.Transfer] {
        actions.compactMap { if case .start(let transfer) = $0 { transfer } else { nil } }
    }

    @Test func nothingIsAskedBeforeAPeersAvailabilityArrives() {
        var swarm = swarm()
        give(&swarm, 1, [0, 1])
        swarm.begin(0, now: 0, share: nil)
        let slot = swarm.add(source: 1, url: "http://h1", isFallback: false, to: 0)!
        var actions: [PieceSwarm.Action] = []
        _ = swarm.fill(0, now: 0, actions: &actions)
        #expect(actions.isEmpty, "its snapshot has not arrived")
        swarm.learn(0, source: slot)
        _ = swarm.fill(0, now: 0.001, actions: &actions)
        #expect(starts(actions).count == 1 && starts(actions)[0].source == 1, "one piece; the second waits in the peer's queue")
    }

    @Test func eachVerifiedPieceReachesTheHostsWatching() {
        var swarm = swarm()
        swarm.begin(0, now: 0, share: nil)
        let slot = swarm.add(source: 1, url: "http://h1", isFallback: false, to: 0)!
        swarm.learn(0, source: slot)
        give(&swarm, 1, [2])
        var news: [Int32] = []
        swarm.announce(1, piece: 2, interested: &news)
        #expect(news == [0])
        var actions: [PieceSwarm.Action] = []
        _ = swarm.fill(0, now: 0, actions: &actions)
        #expect(starts(actions) == [.init(source: 1, receiver: 0, piece: 2)])
    }

    /// One upload slot and one queued request per slot: a third asker is told to come back
    /// when what is ahead of it is sent; a finished upload starts the queued one.
    @Test func uploadSlotsQueueAndBusyHints() {
        var policy = SwarmPolicy()
        policy.maxInFlight = 2
        policy.uploadQueue = 1
        var swarm = swarm(hosts: 4, pieces: 4, policy: policy)
        give(&swarm, 3, [0, 1, 2, 3])
        var actions: [PieceSwarm.Action] = []
        var wakes: [Double?] = []
        for host in 0..<3 {
            swarm.begin(host, now: 0, share: nil)
            swarm.learn(host, source: swarm.add(source: 3, url: "http://h3", isFallback: false, to: host)!)
            wakes.append(swarm.fill(host, now: 0, actions: &actions))
        }
        let started = starts(actions)
        #expect(started.count == 1, "one slot: one piece goes out, one waits, the rest are refused")
        #expect(started[0].receiver == 0)
        #expect(wakes[2].map { $0 > 0 && $0 <= 5 } == true, "the refused host comes back on the hint")
        actions = []
        _ = swarm.completed(started[0], bytes: 1, now: 1, actions: &actions)
        #expect(starts(actions).count == 1 && starts(actions)[0].receiver == 1, "the queued request (host 1's) starts")
    }

    @Test func piecesStartPacedUnderTheCap() {
        var policy = SwarmPolicy()
        policy.uploadSlots = 8
        var swarm = swarm(pieces: 8, policy: policy, paced: 4)
        swarm.begin(0, now: 0, share: nil)
        swarm.learn(0, source: swarm.add(source: 4, url: "http://cdn", isFallback: false, to: 0)!)
        var actions: [PieceSwarm.Action] = []
        let wake = swarm.fill(0, now: 0, actions: &actions)
        #expect(starts(actions).count == 1, "one piece at a time at the cap")
        #expect(wake == 0.25, "the next when the cap is free: 1 byte at 4 bytes/s")
    }
}
