import Testing
@testable import Rollouts
import Wire

/// The rollout engine in virtual time: canary then batches, the concurrency limit, failure
/// budget, leases, no downgrade, hosts joining mid-rollout, rollback.
@Suite struct RolloutEngineTests {
    static let cdn = CDNSource(url: "http://cdn.test", capacityMbps: 1_000_000)

    static func spec(version: String = "2.0.0", canary: Int = 0, batch: Int? = nil, maxConcurrent: Int = 100, budget: Int = 0) -> RolloutSpec {
        RolloutSpec(name: "fledge-agent", version: version, locator: .fledge(manifestURL: nil), sources: [cdn],
                    canary: canary, batches: .sizes(batch.map { [$0] } ?? []), maxConcurrent: maxConcurrent,
                    failureBudget: budget, leaseSeconds: 30, deadlineSeconds: 600)
    }

    static func beat(_ host: String, version: String = "1.0.0", state: AgentState = .idle, rollout: String? = nil, error: String? = nil) -> HeartbeatRequest {
        HeartbeatRequest(hostname: host, ip: "127.0.0.1", version: version, labels: ["idc": "a"], state: state, rolloutId: rollout, error: error)
    }

    /// An engine that has seen `count` hosts at 1.0.0.
    static func fleet(_ count: Int) -> RolloutEngine {
        var engine = RolloutEngine()
        for i in 0..<count { _ = engine.beat(beat(host(i)), now: 0) }
        return engine
    }

    static func host(_ i: Int) -> String { "host\(String(format: "%02d", i))" }

    /// Walks an admitted host through the upgrade to done.
    static func upgrade(_ engine: inout RolloutEngine, _ host: String, rollout: String, now: Int64) {
        for state in [AgentState.downloading, .installing, .restarting] {
            _ = engine.beat(beat(host, state: state, rollout: rollout), now: now)
        }
        _ = engine.beat(beat(host, version: "2.0.0", state: .confirming, rollout: rollout), now: now)
        _ = engine.beat(beat(host, version: "2.0.0", state: .idle), now: now)
    }

    @Test func canaryThenBatchesEachWaitingForConfirmation() throws {
        var engine = Self.fleet(7)
        let rollout = try engine.create(Self.spec(canary: 1, batch: 3), now: 1)
        let batches = Dictionary(grouping: rollout.hosts, by: { $0.value.batch }).mapValues { $0.map(\.key).sorted() }
        #expect(batches[0]?.count == 1)
        #expect(batches[1]?.count == 3)
        #expect(batches[2]?.count == 3)

        // Only the canary gets an order; the others wait.
        let canary = batches[0]![0]
        let others = batches[1]! + batches[2]!
        #expect(engine.beat(Self.beat(canary), now: 2).order != nil)
        for host in others { #expect(engine.beat(Self.beat(host), now: 2).order == nil) }
        // Downloaded is not confirmed: batch 1 still waits.
        _ = engine.beat(Self.beat(canary, state: .downloading, rollout: rollout.id), now: 3)
        #expect(engine.beat(Self.beat(batches[1]![0]), now: 3).order == nil)

        Self.upgrade(&engine, canary, rollout: rollout.id, now: 4)
        for host in batches[1]! {
            let reply = engine.beat(Self.beat(host), now: 5)
            #expect(reply.order?.version == "2.0.0")
            #expect(reply.order?.sources == [Self.cdn.url])
            #expect(reply.nextBeatSeconds == engine.configuration.fastBeatSeconds)
        }
        #expect(engine.beat(Self.beat(batches[2]![0]), now: 5).order == nil, "batch 2 waits for batch 1")
        for host in batches[1]! { Self.upgrade(&engine, host, rollout: rollout.id, now: 6) }
        for host in batches[2]! {
            #expect(engine.beat(Self.beat(host), now: 7).order != nil)
            Self.upgrade(&engine, host, rollout: rollout.id, now: 8)
        }
        engine.sweep(now: 9)
        #expect(engine.state.rollouts[rollout.id]?.phase == .completed)
        #expect(engine.beat(Self.beat(canary, version: "2.0.0"), now: 10).nextBeatSeconds == engine.configuration.slowBeatSeconds)
    }

    @Test func concurrencyLimitHolds() throws {
        var engine = Self.fleet(10)
        let rollout = try engine.create(Self.spec(maxConcurrent: 3), now: 0)
        var admitted = 0
        for i in 0..<10 where engine.beat(Self.beat(Self.host(i)), now: 1).order != nil { admitted += 1 }
        #expect(admitted == 3)
        #expect(engine.state.rollouts[rollout.id]?.activeCount == 3)
        // One finishes: exactly one more gets in.
        let first = engine.state.rollouts[rollout.id]!.hosts.first { $0.value.phase.isActive }!.key
        Self.upgrade(&engine, first, rollout: rollout.id, now: 2)
        let before = Set(engine.state.rollouts[rollout.id]!.hosts.filter { $0.value.phase.isActive }.keys)
        for i in 0..<10 { _ = engine.beat(Self.beat(Self.host(i)), now: 3) }
        let after = Set(engine.state.rollouts[rollout.id]!.hosts.filter { $0.value.phase.isActive }.keys)
        #expect(after.subtracting(before).count == 1)
        #expect(engine.state.rollouts[rollout.id]!.activeCount == 3)
    }

    @Test func failureBudgetPausesAndFailedHostsNeverBlock() throws {
        var engine = Self.fleet(4)
        let rollout = try engine.create(Self.spec(budget: 1), now: 0)
        for i in 0..<4 { _ = engine.beat(Self.beat(Self.host(i)), now: 1) }
        _ = engine.beat(Self.beat(Self.host(0), state: .failed, rollout: rollout.id, error: "rolled back: exited at once"), now: 2)
        #expect(engine.state.rollouts[rollout.id]?.phase == .running, "one failure is within the budget")
        #expect(engine.state.rollouts[rollout.id]?.hosts[Self.host(0)]?.reason == "rolled back: exited at once")
        _ = engine.beat(Self.beat(Self.host(1), state: .failed, rollout: rollout.id, error: "hash mismatch"), now: 3)
        let paused = engine.state.rollouts[rollout.id]!
        #expect(paused.phase == .paused)
        #expect(paused.pauseReason?.contains("failure budget exceeded: 2 hosts failed, budget 1") == true)
        #expect(paused.activeCount == 2, "hosts already upgrading carry on")
        // Resumed, the work goes on.
        _ = try engine.resume(rollout.id, now: 4)
        Self.upgrade(&engine, Self.host(2), rollout: rollout.id, now: 5)
        #expect(engine.state.rollouts[rollout.id]!.hosts[Self.host(2)]?.phase == .done)
    }

    @Test func silentHostLosesItsSlotAndIsRetriedWithBackoff() throws {
        var engine = Self.fleet(2)
        let rollout = try engine.create(Self.spec(maxConcurrent: 1, budget: 5), now: 0)
        #expect(engine.beat(Self.beat(Self.host(0)), now: 1).order != nil)
        #expect(engine.beat(Self.beat(Self.host(1)), now: 1).order == nil, "slot taken")
        engine.sweep(now: 20)
        #expect(engine.state.rollouts[rollout.id]!.hosts[Self.host(0)]?.phase == .admitted, "lease still good")
        engine.sweep(now: 40)  // 30 s lease from t=1
        let failed = engine.state.rollouts[rollout.id]!.hosts[Self.host(0)]!
        #expect(failed.phase == .failed)
        #expect(failed.reason?.contains("lease expired") == true)
        #expect(failed.retryAt == 40 + engine.configuration.retryBackoffSeconds)
        #expect(engine.beat(Self.beat(Self.host(1)), now: 41).order != nil, "the slot is free again")
        engine.sweep(now: 40 + engine.configuration.retryBackoffSeconds)
        #expect(engine.state.rollouts[rollout.id]!.hosts[Self.host(0)]?.phase == .pending, "back after the backoff")
    }

    @Test func neverDowngradesAndNewerHostsAreNotTargets() throws {
        var engine = RolloutEngine()
        _ = engine.beat(Self.beat("old", version: "1.9.0"), now: 0)
        _ = engine.beat(Self.beat("newer", version: "2.10.0"), now: 0)
        _ = engine.beat(Self.beat("same", version: "2.0.0"), now: 0)
        let rollout = try engine.create(Self.spec(version: "2.0.0"), now: 1)
        #expect(Set(rollout.hosts.keys) == ["old"], "2.10.0 > 2.0.0 as versions, though not as strings")
        #expect(engine.beat(Self.beat("newer", version: "2.10.0"), now: 2).order == nil)
    }

    @Test func silentHostsNeitherBecomeTargetsNorHoldBatchesUp() throws {
        var engine = Self.fleet(3)
        _ = engine.beat(Self.beat("ghost"), now: -1_000)  // last seen long ago
        let rollout = try engine.create(Self.spec(canary: 1, batch: 1), now: 0)
        #expect(rollout.hosts["ghost"] == nil, "a host gone silent is not a target")
        // The canary goes silent after creation: it must not hold the next batches forever.
        let canary = rollout.hosts.first { $0.value.batch == 0 }!.key
        engine.sweep(now: engine.configuration.absentAfterSeconds + 1)
        #expect(engine.state.rollouts[rollout.id]!.hosts[canary]?.phase == .absent)
        let next = rollout.hosts.first { $0.value.batch == 1 }!.key
        #expect(engine.beat(Self.beat(next), now: engine.configuration.absentAfterSeconds + 2).order != nil)
        // It comes back: pending again, and upgraded like anyone.
        #expect(engine.beat(Self.beat(canary), now: engine.configuration.absentAfterSeconds + 3).order != nil)
        // The ghost shows up: a latecomer.
        _ = engine.beat(Self.beat("ghost"), now: engine.configuration.absentAfterSeconds + 4)
        #expect(engine.state.rollouts[rollout.id]!.hosts["ghost"] != nil)
    }

    @Test func aHostBusyWithAnUpgradeIsNotAdmittedAgain() throws {
        var engine = Self.fleet(1)
        let first = try engine.create(Self.spec(), now: 0)
        _ = engine.beat(Self.beat(Self.host(0)), now: 1)
        _ = try engine.abort(first.id, now: 2)
        let second = try engine.create(Self.spec(version: "2.1.0"), now: 3)
        // Still installing what the aborted rollout ordered: it finishes first.
        #expect(engine.beat(Self.beat(Self.host(0), state: .installing, rollout: first.id), now: 4).order == nil)
        #expect(engine.state.rollouts[second.id]!.hosts[Self.host(0)]?.phase == .pending)
        #expect(engine.beat(Self.beat(Self.host(0), version: "2.0.0"), now: 5).order?.version == "2.1.0")
    }

    @Test func hostsJoiningMidRolloutAreIncluded() throws {
        var engine = Self.fleet(1)
        let rollout = try engine.create(Self.spec(), now: 0)
        let reply = engine.beat(Self.beat("latecomer"), now: 5)
        #expect(reply.order != nil)
        #expect(engine.state.rollouts[rollout.id]?.hosts["latecomer"] != nil)
    }

    @Test func lostOrderIsSentAgain() throws {
        var engine = Self.fleet(1)
        _ = try engine.create(Self.spec(), now: 0)
        let first = engine.beat(Self.beat(Self.host(0)), now: 1).order
        let again = engine.beat(Self.beat(Self.host(0)), now: 2).order
        #expect(first != nil)
        #expect(again == first)
        // Killed mid-download and back idle on the old version: the order again, to resume.
        let rollout = try #require(first?.rolloutId)
        #expect(engine.beat(Self.beat(Self.host(0), state: .downloading, rollout: rollout), now: 3).order == nil)
        #expect(engine.beat(Self.beat(Self.host(0)), now: 4).order == first)
    }

    @Test func oneActiveRolloutAndValidationNamesTheField() throws {
        var engine = Self.fleet(1)
        _ = try engine.create(Self.spec(), now: 0)
        #expect(throws: EngineError.self) { try engine.create(Self.spec(version: "3.0.0"), now: 1) }
        var bad = Self.spec()
        bad.sources = []
        var empty = RolloutEngine()
        #expect(throws: EngineError.invalid(ValidationError(field: "sources", reason: "give at least one source"))) {
            try empty.create(bad, now: 0)
        }
    }

    @Test func rollbackTakesHostsBackExplicitly() throws {
        var engine = Self.fleet(2)
        let rollout = try engine.create(Self.spec(), now: 0)
        for i in 0..<2 {
            _ = engine.beat(Self.beat(Self.host(i)), now: 1)
            Self.upgrade(&engine, Self.host(i), rollout: rollout.id, now: 2)
        }
        let back = try engine.rollback(rollout.id, now: 3)
        #expect(back.spec.version == "1.0.0")
        #expect(back.allowsDowngrade)
        #expect(back.hosts.count == 2)
        let order = engine.beat(Self.beat(Self.host(0), version: "2.0.0"), now: 4).order
        #expect(order?.version == "1.0.0")
    }

    @Test func pauseResumeAbort() throws {
        var engine = Self.fleet(2)
        let rollout = try engine.create(Self.spec(), now: 0)
        _ = try engine.pause(rollout.id, now: 1)
        #expect(engine.beat(Self.beat(Self.host(0)), now: 2).order == nil)
        #expect(throws: EngineError.self) { try engine.pause(rollout.id, now: 3) }
        _ = try engine.resume(rollout.id, now: 3)
        #expect(engine.beat(Self.beat(Self.host(0)), now: 4).order != nil)
        _ = try engine.abort(rollout.id, now: 5)
        #expect(engine.beat(Self.beat(Self.host(1)), now: 6).order == nil)
        #expect(engine.state.rollouts[rollout.id]?.finishedAt == 5)
        #expect(throws: EngineError.notFound("nope")) { try engine.abort("nope", now: 7) }
    }

    @Test func eventsReplayToTheSameState() throws {
        var engine = Self.fleet(5)
        let rollout = try engine.create(Self.spec(canary: 1, batch: 2, budget: 3), now: 0)
        for i in 0..<5 { _ = engine.beat(Self.beat(Self.host(i)), now: 1) }
        Self.upgrade(&engine, rollout.hosts.first { $0.value.batch == 0 }!.key, rollout: rollout.id, now: 2)
        for i in 0..<5 { _ = engine.beat(Self.beat(Self.host(i)), now: 3) }
        engine.sweep(now: 100)
        let events = engine.takeOutbox()
        var replayed = FleetState()
        for event in events { replayed.apply(event) }
        // Leases are memory only; everything else must match.
        func withoutLeases(_ state: FleetState) -> FleetState {
            var state = state
            for (id, rollout) in state.rollouts {
                for (host, progress) in rollout.hosts {
                    var progress = progress
                    progress.leaseUntil = nil
                    state.rollouts[id]!.set(host, progress)
                }
            }
            for name in state.agents.keys {
                state.agents[name]!.lastSeen = 0
                state.agents[name]!.state = .idle
                state.agents[name]!.error = nil
            }
            return state
        }
        #expect(withoutLeases(replayed) == withoutLeases(engine.state))
        // Applying twice changes nothing.
        for event in events { replayed.apply(event) }
        #expect(withoutLeases(replayed) == withoutLeases(engine.state))
    }

    @Test func aSwarmGetsOneSeedAndPeersThatGrowWhileFetching() throws {
        var configuration = EngineConfiguration()
        configuration.planner.pieceRelay = true
        configuration.planner.cdnSeeds = 1
        configuration.planner.swarmPeers = 3
        var engine = RolloutEngine(configuration: configuration)
        func beat(_ i: Int, _ state: AgentState = .idle, rollout: String? = nil) -> HeartbeatRequest {
            HeartbeatRequest(hostname: Self.host(i), ip: "127.0.0.\(i + 1)", version: "1.0.0", labels: ["idc": "a"],
                             state: state, rolloutId: rollout, peerPort: 7000)
        }
        for i in 0..<6 { _ = engine.beat(beat(i), now: 0) }
        let rollout = try engine.create(Self.spec(), now: 1)
        var orders: [UpgradeOrder] = []
        for i in 0..<6 {
            orders.append(try #require(engine.beat(beat(i), now: 1).order, "host \(i) admitted at once"))
        }
        #expect(orders[0].sources == [Self.cdn.url] && orders[0].fallbackSources == nil, "the one seed")
        for order in orders.dropFirst() {
            #expect(order.fallbackSources == [Self.cdn.url], "everyone else: the CDN as a last resort")
            #expect(!order.sources.contains(Self.cdn.url))
        }
        #expect(orders[1].sources == ["http://127.0.0.1:7000"], "the only member so far")
        // The seed, fetching, hears of peers that joined after it: the order comes again.
        let again = try #require(engine.beat(beat(0, .downloading, rollout: rollout.id), now: 2).order)
        #expect(again.sources.first == Self.cdn.url)
        #expect(again.sources.count == 4 && !again.sources.contains("http://127.0.0.1:7000"))
        #expect(engine.beat(beat(0, .downloading, rollout: rollout.id), now: 3).order == nil, "full: no news")
    }

    /// Hosts waiting for a slot beat at an interval that keeps their beats within the budget;
    /// upgrading hosts beat fast; hosts with nothing to wait for beat slowly (and long-poll).
    @Test func waitingHostsArePacedByTheirNumber() throws {
        var configuration = EngineConfiguration()
        configuration.waitingBeatsPerSecond = 10
        var engine = RolloutEngine(configuration: configuration)
        for i in 0..<41 { _ = engine.beat(Self.beat(Self.host(i), version: i == 40 ? "2.0.0" : "1.0.0"), now: 0) }
        let rollout = try engine.create(Self.spec(maxConcurrent: 1), now: 1)
        let admitted = engine.beat(Self.beat(Self.host(0)), now: 1)
        #expect(admitted.order != nil && admitted.nextBeatSeconds == 1, "upgrading: fast")
        #expect(engine.beat(Self.beat(Self.host(1)), now: 1).nextBeatSeconds == 3.9, "39 waiting at 10 beats/s")
        #expect(engine.beat(Self.beat(Self.host(40), version: "2.0.0"), now: 1).nextBeatSeconds == 60, "not a target: idle")
        RolloutEngineTests.upgrade(&engine, Self.host(0), rollout: rollout.id, now: 2)
        #expect(engine.beat(Self.beat(Self.host(0), version: "2.0.0"), now: 2).nextBeatSeconds == 60, "done: idle")
        _ = try engine.pause(rollout.id, now: 3)
        #expect(engine.beat(Self.beat(Self.host(2)), now: 3).nextBeatSeconds == 60, "paused: waits for the resume")
        _ = try engine.resume(rollout.id, now: 4)
        configuration.waitingBeatsPerSecond = 1_000
        #expect(configuration.pacedBeatSeconds(waitingHosts: 39) == 1, "never faster than the fast beat")
        #expect(configuration.pacedBeatSeconds(waitingHosts: 10_000_000) == 60, "never slower than the idle beat")
    }

    /// Hosts changed by another instance join the peer index one by one; one that no longer
    /// qualifies makes the index be built again, not serve a stale member.
    @Test func thePeerIndexFollowsChangesMadeElsewhere() throws {
        var configuration = EngineConfiguration()
        configuration.planner.pieceRelay = true
        var engine = RolloutEngine(configuration: configuration)
        func beat(_ i: Int, _ state: AgentState = .idle, rollout: String? = nil) -> HeartbeatRequest {
            HeartbeatRequest(hostname: Self.host(i), ip: "127.0.0.\(i + 1)", version: "1.0.0", labels: ["idc": "a"],
                             state: state, rolloutId: rollout, peerPort: 7000)
        }
        for i in 0..<4 { _ = engine.beat(beat(i), now: 0) }
        let rollout = try engine.create(Self.spec(maxConcurrent: 1), now: 1)
        _ = try #require(engine.beat(beat(0), now: 1).order)
        _ = engine.beat(beat(0, .downloading, rollout: rollout.id), now: 2)
        #expect(engine.peerIndex?.members == [Self.host(0)], "the swarm's seed, fetching")
        // Another instance admitted host01: a swarm member while it fetches.
        engine.update { state in
            var progress = state.rollouts[rollout.id]!.hosts[Self.host(1)]!
            progress.phase = .downloading
            state.rollouts[rollout.id]!.set(Self.host(1), progress)
            return .hosts([Self.host(1)])
        }
        #expect(engine.peerIndex?.members == [Self.host(0), Self.host(1)], "joined without a rebuild")
        engine.update { state in
            var progress = state.rollouts[rollout.id]!.hosts[Self.host(0)]!
            progress.phase = .failed
            state.rollouts[rollout.id]!.set(Self.host(0), progress)
            return .hosts([Self.host(0)])
        }
        #expect(engine.peerIndex == nil, "a member failed elsewhere: rebuilt at the next admission")
    }

    /// A host that drops a peer for misbehaving says so in its beats: the peer leaves its order
    /// and is never listed for it again; once two hosts report it, for nobody.
    @Test func reportedPeersAreQuarantined() throws {
        var configuration = EngineConfiguration()
        configuration.planner.pieceRelay = true
        configuration.planner.cdnSeeds = 1
        configuration.planner.swarmPeers = 8
        var engine = RolloutEngine(configuration: configuration)
        func beat(_ i: Int, _ state: AgentState = .idle, rollout: String? = nil, dropped: [String] = []) -> HeartbeatRequest {
            HeartbeatRequest(hostname: Self.host(i), ip: "127.0.0.\(i + 1)", version: "1.0.0", labels: ["idc": "a"], state: state,
                             rolloutId: rollout, peerPort: 7000,
                             droppedSources: dropped.isEmpty ? nil : dropped.map { SourceFailure(source: $0, reason: "too slow") })
        }
        for i in 0..<6 { _ = engine.beat(beat(i), now: 0) }
        let rollout = try engine.create(Self.spec(), now: 1)
        for i in 0..<4 { _ = try #require(engine.beat(beat(i), now: 1).order) }
        let liar = "http://127.0.0.1:7000"  // host 0
        _ = engine.beat(beat(1, .downloading, rollout: rollout.id, dropped: [liar]), now: 2)
        let progress = try #require(engine.state.rollouts[rollout.id]?.hosts[Self.host(1)])
        #expect(progress.reported == [liar] && !progress.sources.contains(liar), "out of its order")
        let fifth = try #require(engine.beat(beat(4), now: 2).order)
        #expect(fifth.sources.contains(liar), "one report: others still get it")
        _ = engine.beat(beat(2, .downloading, rollout: rollout.id, dropped: [liar]), now: 3)
        let sixth = try #require(engine.beat(beat(5), now: 3).order)
        #expect(!sixth.sources.contains(liar), "two reports: no new order lists it")
        #expect(engine.state.rollouts[rollout.id]?.reports[liar] == 2)
    }
}
