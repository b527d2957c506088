import Foundation
import Synchronization
import Testing
@testable import HBS
@testable import Rollouts
import Wire

/// Quiet beats: the beats the engine says change nothing but a host's time are answered off
/// the control plane's actor, and every change to what they would be answered is seen.
@Suite struct QuietBeatTests {
    typealias E = RolloutEngineTests

    /// Whatever the engine calls quiet, a beat from that host with its identity (in any state)
    /// changes nothing and is answered with the interval it names: checked for every host at
    /// every step of a rollout with a canary, a host outside the selector, one already at the
    /// target, a latecomer and a failure.
    @Test func aQuietHostsBeatChangesNothingButItsTime() throws {
        var engine = E.fleet(6)
        _ = engine.beat(HeartbeatRequest(hostname: "elsewhere", ip: "127.0.0.2", version: "1.0.0", labels: ["idc": "b"], state: .idle), now: 0)
        _ = engine.beat(E.beat("current", version: "2.0.0"), now: 0)
        _ = engine.takeOutbox()
        var checked = 0
        func checkEveryHost(_ now: Int64) {
            for (host, agent) in engine.state.agents {
                guard let interval = engine.quietInterval(for: host) else { continue }
                for state in [AgentState.idle, .downloading, .failed] {
                    var copy = engine
                    let beat = HeartbeatRequest(
                        hostname: host, ip: agent.ip, version: agent.version, labels: agent.labels, state: state,
                        held: agent.held, peerPort: agent.peerPort, release: agent.release, startedAt: agent.startedAt)
                    let reply = copy.beat(beat, now: now)
                    #expect(copy.takeOutbox().isEmpty, "\(host)'s quiet beat (\(state)) recorded nothing")
                    #expect(reply.order == nil && reply.nextBeatSeconds == interval, "\(host): answered as its quiet interval says")
                    #expect(copy.state.agents[host]?.lastSeen == now && copy.state.agents[host]?.state == state)
                    checked += 1
                }
            }
        }
        checkEveryHost(1)
        #expect(engine.quietInterval(for: "nobody") == nil, "an unknown host's first beat is news")
        var spec = E.spec(canary: 1, batch: 2)
        spec.selector = .labels(["idc": "a"])
        let rollout = try engine.create(spec, now: 2)
        _ = engine.takeOutbox()
        checkEveryHost(3)
        #expect(engine.quietInterval(for: "elsewhere") != nil, "outside the selector: quiet through the rollout")
        #expect(engine.quietInterval(for: "current") != nil, "already at the target: quiet")
        #expect(engine.quietInterval(for: E.host(0)) == nil, "pending: its beat may admit it")
        _ = engine.beat(E.beat("late"), now: 3)  // joins as a latecomer
        for now in Int64(4)...12 {
            for host in engine.state.agents.keys.sorted() where engine.quietInterval(for: host) == nil {
                let reply = engine.beat(E.beat(host, version: engine.state.agents[host]!.version), now: now)
                if reply.order != nil {
                    if host == E.host(1) {
                        _ = engine.beat(E.beat(host, state: .failed, rollout: rollout.id, error: "disk full"), now: now)
                    } else {
                        E.upgrade(&engine, host, rollout: rollout.id, now: now)
                    }
                }
            }
            engine.sweep(now: now)
            _ = engine.takeOutbox()
            checkEveryHost(now)
        }
        #expect(engine.state.rollouts[rollout.id]?.hosts[E.host(0)]?.phase == .done)
        #expect(engine.quietInterval(for: E.host(0)) == engine.configuration.slowBeatSeconds, "done: quiet")
        #expect(engine.quietInterval(for: E.host(1)) == nil, "failed: its beat may find it done after all")
        #expect(checked > 100)
    }

    /// Quiet beats reach the engine as its beat would have kept them; one no newer than the
    /// host's record (taken from a later beat, here one with a new identity) is left out, and
    /// so is a host gone since.
    @Test func quietBeatTimesAreTakenAsTheEngineWouldHave() {
        var engine = E.fleet(2)
        _ = engine.beat(E.beat(E.host(1), version: "9.9.9"), now: 5)  // a new identity, taken at 5
        _ = engine.takeOutbox()
        engine.noteQuietBeats([
            QuietBeat(E.beat(E.host(0), state: .failed, error: "disk full"), at: 5),
            QuietBeat(E.beat(E.host(1), state: .downloading), at: 5),
            QuietBeat(E.beat("gone"), at: 5),
        ])
        var reference = E.fleet(1)
        _ = reference.beat(E.beat(E.host(0), state: .failed, error: "disk full"), now: 5)
        #expect(engine.state.agents[E.host(0)] == reference.state.agents[E.host(0)], "as the engine's beat keeps it")
        #expect(engine.state.agents[E.host(1)]?.state == .idle && engine.state.agents[E.host(1)]?.version == "9.9.9")
        #expect(engine.state.agents["gone"] == nil)
        engine.noteQuietBeats([QuietBeat(E.beat(E.host(0)), at: 3), QuietBeat(E.beat(E.host(1), state: .downloading), at: 6)])
        #expect(engine.state.agents[E.host(0)]?.lastSeen == 5, "an older beat does not go back in time")
        #expect(engine.state.agents[E.host(1)]?.lastSeen == 6 && engine.state.agents[E.host(1)]?.state == .downloading)
        #expect(engine.takeOutbox().isEmpty)
    }

    /// A store whose `refresh` for the host "blocker" holds the actor's thread until let go,
    /// and whose writes may fail.
    final class HoldingStore: FleetStore, Sendable {
        let holding = Atomic<Bool>(false)
        let release = Atomic<Bool>(false)
        let failures = Atomic<Int>(0)

        func load() throws(StoreError) -> FleetState { FleetState() }
        func events(of rollout: String, after: Int) -> [RolloutEvent] { [] }
        func prepare(_ events: [FleetEvent], state: FleetState) throws(StoreError) -> DurableWrite {
            { () throws(StoreError) in
                if self.failures.load(ordering: .relaxed) > 0 {
                    self.failures.subtract(1, ordering: .relaxed)
                    throw .io("disk full")
                }
            }
        }
        func refresh(_ state: inout FleetState, host: String, keeping: Set<String>) -> OutsideChange {
            guard host == "blocker" else { return .nothing }
            holding.store(true, ordering: .releasing)
            while !release.load(ordering: .acquiring) { usleep(1000) }
            return .nothing
        }
    }

    /// Waits (up to 10 s) for `condition`.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// A quiet host's beat is answered while the actor is held by another beat, and its time
    /// reaches the state.
    @Test(.timeLimit(.minutes(1))) func aQuietBeatDoesNotWaitForTheActor() async throws {
        let store = HoldingStore()
        let now = Atomic<Int64>(10)
        let plane = try ControlPlane(store: store, logger: .init(label: "test"), clock: { now.load(ordering: .relaxed) })
        #expect(await plane.beat(E.beat("h1")).stored)
        #expect(plane.quietHosts == 1)
        let held = Task { await plane.beat(E.beat("blocker")) }
        try await Self.eventually { store.holding.load(ordering: .acquiring) }
        now.store(20, ordering: .relaxed)
        let answered = Task { await plane.beat(E.beat("h1", state: .downloading)) }
        let quiet = await answered.value
        #expect(quiet.stored && quiet.reply.order == nil && quiet.reply.nextBeatSeconds == plane.idleBeatSeconds)
        store.release.store(true, ordering: .releasing)
        _ = await held.value
        let agent = await plane.state.agents["h1"]
        #expect(agent?.lastSeen == 20 && agent?.state == .downloading, "the quiet beat's time and state reached the engine")
    }

    /// A rollout created makes every host's next beat the actor's again (and it is ordered); a
    /// beat with a new identity is recorded.
    @Test func aNewRolloutOrIdentityEndsTheQuiet() async throws {
        let plane = try ControlPlane(store: HoldingStore(), logger: .init(label: "test"), clock: { 10 })
        for host in ["a", "b"] { _ = await plane.beat(E.beat(host)) }
        #expect(plane.quietHosts == 2)
        _ = await plane.beat(E.beat("b", version: "1.5.0"))
        #expect(await plane.state.agents["b"]?.version == "1.5.0", "a new version is news, taken by the actor")
        _ = try await plane.create(E.spec())
        #expect(plane.quietHosts == 0)
        #expect(await plane.beat(E.beat("a")).reply.order != nil, "the rollout's first beat from a is ordered")
        #expect(await plane.beat(E.beat("b", version: "1.5.0")).reply.order != nil)
    }

    /// A wrong secret on a quiet host is refused, and so is a forgotten host's beat.
    @Test func credentialsAreCheckedOnQuietBeats() async throws {
        let plane = try ControlPlane(store: HoldingStore(), logger: .init(label: "test"), clock: { 10 })
        let secret = CredentialDigest(ofSecret: "s3cret")
        try await plane.enrol(host: "h1", digest: secret)
        _ = try await plane.beat(E.beat("h1"), credential: secret)
        #expect(plane.quietHosts == 1)
        await #expect(throws: CredentialRefusal.wrongSecret) { try await plane.beat(E.beat("h1"), credential: CredentialDigest(ofSecret: "guess")) }
        #expect(try await plane.beat(E.beat("h1"), credential: secret).stored)
        try await plane.forget(host: "h1", by: "test")
        await #expect(throws: CredentialRefusal.notEnrolled) { try await plane.beat(E.beat("h1"), credential: secret) }
    }

    /// After a failed write, what it carried is taken again by the actor (the host it first
    /// made known is not answered as quiet while the store never had it), and once the store
    /// writes again quiet beats are answered as stored.
    @Test func aFailedWriteEndsTheQuietAndTheStoreRecovering() async throws {
        let store = HoldingStore()
        store.failures.store(1, ordering: .relaxed)
        let plane = try ControlPlane(store: store, logger: .init(label: "test"), clock: { 10 })
        #expect(await plane.beat(E.beat("h1")).stored == false)
        #expect(plane.quietHosts == 0)
        #expect(await plane.state.agents["h1"] == nil)
        #expect(await plane.beat(E.beat("h1")).stored, "taken again, and stored this time")
        #expect(await plane.state.agents["h1"] != nil)
        #expect(await plane.beat(E.beat("h1")).stored, "a quiet beat after a failed write is answered as stored")
        #expect(plane.quietHosts == 1)
    }
}
