import Testing
@testable import Rollouts
import Wire

/// The engine's side of trust, in virtual time: a name binds once, peers are listed only where
/// HBS can vouch for them, and the hosts table and rollout history stay bounded.
@Suite struct TrustEngineTests {
    @Test func aNameBindsOnceUntilAnAdminForgetsIt() throws {
        var engine = RolloutEngine()
        try engine.enrol(host: "a", digest: "d1")
        #expect(throws: EngineError.self) { try engine.enrol(host: "a", digest: "d2") }
        #expect(engine.state.credentials["a"] == "d1", "the first binding stands")
        try engine.forget(host: "a")
        #expect(engine.state.credentials["a"] == nil)
        try engine.enrol(host: "a", digest: "d2")
        #expect(engine.state.credentials["a"] == "d2")
        #expect(throws: EngineError.self) { try engine.forget(host: "nobody") }
        // Replaying the journal gives the same bindings.
        var replayed = FleetState()
        for event in engine.takeOutbox() { replayed.apply(event) }
        #expect(replayed.credentials == engine.state.credentials)
    }

    /// A host that says it holds the release, but was never ordered to fetch it and does not
    /// run it, is listed to nobody; one that runs it is.
    @Test func peersAreListedOnlyWhereHBSCanVouch() throws {
        var configuration = EngineConfiguration()
        configuration.planner.pieceRelay = true
        configuration.planner.cdnSeeds = 1
        configuration.planner.swarmPeers = 8
        var engine = RolloutEngine(configuration: configuration)
        let whole = [HeldRelease(name: "fledge-agent", version: "2.0.0", complete: true)]
        func beat(_ i: Int, version: String = "1.0.0", _ state: AgentState = .idle, rollout: String? = nil, held: [HeldRelease] = []) -> HeartbeatRequest {
            HeartbeatRequest(hostname: RolloutEngineTests.host(i), ip: "127.0.0.\(i + 1)", version: version, labels: ["idc": "a"],
                             state: state, rolloutId: rollout, held: held, peerPort: 7000)
        }
        for i in 0..<4 { _ = engine.beat(beat(i), now: 0) }
        let liar = "http://127.0.0.5:7000", runner = "http://127.0.0.6:7000"
        _ = engine.beat(beat(4, held: whole), now: 0)  // claims it, was never ordered, runs 1.0.0
        _ = engine.beat(beat(5, version: "2.0.0", held: whole), now: 0)  // runs it: HBS saw that
        let rollout = try engine.create(RolloutEngineTests.spec(maxConcurrent: 2), now: 1)
        var orders: [UpgradeOrder] = []
        for i in 0..<4 { if let order = engine.beat(beat(i), now: 1).order { orders.append(order) } }
        #expect(orders.count == 2)
        for order in orders {
            let listed = order.sources + (order.fallbackSources ?? [])
            #expect(!listed.contains(liar), "a claim alone lists nobody")
        }
        #expect(orders.contains { $0.sources.contains(runner) }, "a host seen running the release serves it")
        // The liar keeps claiming while downloading a rollout it was never part of: still nobody's peer.
        _ = engine.beat(beat(4, .downloading, rollout: rollout.id, held: whole), now: 2)
        let later = engine.beat(beat(0, .downloading, rollout: rollout.id), now: 3).order?.sources ?? []
        #expect(!later.contains(liar))
    }

    @Test func longGoneHostsArePrunedAndHistoryIsCapped() throws {
        var configuration = EngineConfiguration()
        configuration.pruneAfterSeconds = 100
        configuration.rolloutHistory = 2
        var engine = RolloutEngine(configuration: configuration)
        for host in ["gone", "here"] {
            try engine.enrol(host: host, digest: "d-\(host)")
            _ = engine.beat(RolloutEngineTests.beat(host), now: 0)
        }
        var ids: [String] = []
        for (index, version) in ["2.0.0", "2.0.1", "2.0.2", "2.0.3"].enumerated() {
            let rollout = try engine.create(RolloutEngineTests.spec(version: version), now: Int64(10 + index))
            _ = try engine.abort(rollout.id, now: Int64(10 + index))
            ids.append(rollout.id)
        }
        _ = engine.beat(RolloutEngineTests.beat("here"), now: 150)
        engine.sweep(now: 150)
        #expect(engine.state.agents["gone"] == nil && engine.state.credentials["gone"] == nil, "unseen for 150 s > 100 s: forgotten")
        #expect(engine.state.agents["here"] != nil && engine.state.credentials["here"] != nil)
        #expect(Set(engine.state.rollouts.keys) == Set(ids.suffix(2)), "the two newest finished rollouts are kept")
    }
}
