import Foundation
import FledgeTesting
import Logging
import Testing
import Transfer
@testable import HBS
@testable import Rollouts
import Wire

/// The Redis store against a real redis-server: atomic admission under contention, leases that
/// free their slots, state shared between two stores, and an outage survived.
@Suite struct RedisStoreTests {
    static func store(_ redis: RedisProcess) throws -> RedisStore {
        RedisStore(client: try RedisClient(url: redis.url), logger: Logger(label: "test"))
    }

    /// A real redis-server of the test's own, in a directory of its own.
    static func redis() async throws -> (TemporaryDirectory, RedisProcess) {
        let directory = try TemporaryDirectory()
        do {
            return (directory, try await RedisProcess.start(directory: directory.string))
        } catch {
            directory.remove()
            throw error
        }
    }

    @Test func admissionNeverExceedsTheLimitUnderContention() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        // Four stores (four connections, as four HBS instances would have) race for 5 slots.
        let stores = try (0..<4).map { _ in try Self.store(redis) }
        let admitted = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, store) in stores.enumerated() {
                group.addTask {
                    try await Blocking.run {
                        (0..<50).filter { store.admit(host: "s\(index)-h\($0)", limit: 5, leaseUntil: 1_000, now: 100) }.count
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(admitted == 5)
        #expect(try stores[0].slotHolders(now: 100) == 5)
        #expect(try await redis.cli(["ZCARD", "agent_upgrade_set"]) == "5")
    }

    @Test func leasesRenewExpireAndRelease() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let store = try Self.store(redis)
        #expect(store.admit(host: "a", limit: 1, leaseUntil: 130, now: 100))
        #expect(!store.admit(host: "b", limit: 1, leaseUntil: 130, now: 110))
        #expect(store.admit(host: "a", limit: 1, leaseUntil: 160, now: 120), "the holder renews")
        store.renew(host: "a", leaseUntil: 170)
        #expect(store.lease(of: "a") == .held(until: 170))
        #expect(store.lease(of: "b") == .free)
        #expect(store.admit(host: "b", limit: 1, leaseUntil: 200, now: 171), "a's lease expired: its slot is free")
        store.release(host: "b")
        #expect(store.admit(host: "c", limit: 1, leaseUntil: 300, now: 172))
    }

    @Test func stateIsSharedBetweenInstances() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let one = try Self.store(redis), two = try Self.store(redis)
        var engine = RolloutEngineTests.fleet(3)
        let rollout = try engine.create(RolloutEngineTests.spec(maxConcurrent: 2), now: 1)
        _ = engine.beat(RolloutEngineTests.beat(RolloutEngineTests.host(0)), now: 2, ledger: one)
        try one.append(engine.takeOutbox(), state: engine.state)

        let loaded = try two.load()
        #expect(loaded.rollouts[rollout.id]?.hosts.count == 3)
        #expect(loaded.rollouts[rollout.id]?.hosts[RolloutEngineTests.host(0)]?.phase == .admitted)
        #expect(loaded.agents.count == 3)
        // A phase change made through one is seen by the other: at its next sweep at once, and
        // by its beats within 250 ms.
        _ = try engine.pause(rollout.id, now: 3)
        try one.append(engine.takeOutbox(), state: engine.state)
        var state = loaded
        _ = two.synchronize(&state, keeping: [])
        #expect(state.rollouts[rollout.id]?.phase == .paused)
        _ = try engine.resume(rollout.id, now: 4)
        try one.append(engine.takeOutbox(), state: engine.state)
        try await Task.sleep(for: .milliseconds(300))
        _ = two.refresh(&state, host: RolloutEngineTests.host(1), keeping: [])
        #expect(state.rollouts[rollout.id]?.phase == .running)
    }

    /// A new rollout is one record with its hosts as lists of names, not a record a host (what
    /// made creating one of 100,000 hosts take seconds); hosts get their records as they move,
    /// and another instance reads the same rollout back, before and after a phase change.
    @Test func aNewRolloutWritesNoHostRecords() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let one = try Self.store(redis), two = try Self.store(redis)
        var engine = RolloutEngineTests.fleet(40)
        let rollout = try engine.create(RolloutEngineTests.spec(canary: 2, batch: 10, maxConcurrent: 2), now: 1)
        try one.append(engine.takeOutbox(), state: engine.state)
        #expect(try await redis.cli(["HLEN", "fledge:hosts:\(rollout.id)"]) == "0")
        var state = try two.load()
        #expect(state.rollouts[rollout.id] == engine.state.rollouts[rollout.id])

        for i in 0..<3 { _ = engine.beat(RolloutEngineTests.beat(RolloutEngineTests.host(i)), now: 2, ledger: one) }
        _ = try engine.pause(rollout.id, now: 3)
        try one.append(engine.takeOutbox(), state: engine.state)
        #expect(try await redis.cli(["HLEN", "fledge:hosts:\(rollout.id)"]) == "2", "the canary's two admitted hosts")
        _ = two.synchronize(&state, keeping: [])
        #expect(state.rollouts[rollout.id]?.phase == .paused)
        #expect(state.rollouts[rollout.id]?.hosts == engine.state.rollouts[rollout.id]?.hosts)
        #expect(try two.load().rollouts[rollout.id] == engine.state.rollouts[rollout.id])
    }

    /// Another instance finishes the rollout: this one sees it completed with every host done,
    /// not its own table from before (once a rollout is no longer active no beat rereads it).
    @Test func aRolloutFinishedElsewhereIsSeenWhole() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let one = try Self.store(redis), two = try Self.store(redis)
        var engine = RolloutEngineTests.fleet(3)
        let rollout = try engine.create(RolloutEngineTests.spec(maxConcurrent: 3), now: 1)
        for i in 0..<3 { _ = engine.beat(RolloutEngineTests.beat(RolloutEngineTests.host(i)), now: 2, ledger: one) }
        try one.append(engine.takeOutbox(), state: engine.state)
        var state = try two.load()
        #expect(state.rollouts[rollout.id]?.hosts.values.allSatisfy { $0.phase == .admitted } == true)

        for i in 0..<3 { RolloutEngineTests.upgrade(&engine, RolloutEngineTests.host(i), rollout: rollout.id, now: 3) }
        engine.sweep(now: 4, ledger: one)
        try one.append(engine.takeOutbox(), state: engine.state)
        #expect(engine.state.rollouts[rollout.id]?.phase == .completed)

        _ = two.synchronize(&state, keeping: [])
        #expect(state.rollouts[rollout.id]?.phase == .completed)
        #expect(state.rollouts[rollout.id]?.hosts.values.map(\.phase) == [.done, .done, .done], "every host done, as Redis has it")
        #expect(state.activeRolloutID == nil)
    }

    @Test func outageAdmitsNobodyAndRecovers() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let redis = try await RedisProcess.start(directory: directory.string)
        let store = RedisStore(client: try RedisClient(url: redis.url, retryMilliseconds: 50), logger: Logger(label: "test"))
        #expect(store.admit(host: "a", limit: 10, leaseUntil: 1_000, now: 1))
        redis.kill()
        #expect(!store.admit(host: "b", limit: 10, leaseUntil: 1_000, now: 2))
        #expect(store.lease(of: "a") == .unknown)
        #expect(throws: StoreError.self) { try store.append([.rolloutPhase(rollout: "r1", phase: .paused, reason: nil, at: 1)], state: FleetState()) }
        #expect(store.failures > 0)
        try await redis.restart()
        defer { redis.kill() }
        try await Task.sleep(for: .milliseconds(100))
        #expect(store.admit(host: "b", limit: 10, leaseUntil: 1_000, now: 3), "reconnected by itself")
        #expect(store.lease(of: "a") == .held(until: 1_000), "the append-only file kept the slots")
    }

    /// A sync reads what other instances changed from the change stream: only the agents and
    /// hosts named there, never this instance's own writes; one that fell behind the stream's
    /// cap reads everything again.
    @Test func syncsFollowTheChangeStream() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let one = try Self.store(redis), two = try Self.store(redis)
        var engine = RolloutEngineTests.fleet(3)
        try one.append(engine.takeOutbox(), state: engine.state)
        var state = try two.load()
        #expect(state.agents.count == 3)
        let rollout = try engine.create(RolloutEngineTests.spec(maxConcurrent: 3), now: 1)
        try one.append(engine.takeOutbox(), state: engine.state)
        #expect(two.synchronize(&state, keeping: []) == .everything, "a new rollout: read whole")
        #expect(two.synchronize(&state, keeping: []) == .nothing, "nothing new")

        _ = engine.beat(RolloutEngineTests.beat(RolloutEngineTests.host(0)), now: 2, ledger: one)
        _ = engine.beat(RolloutEngineTests.beat("newcomer"), now: 2, ledger: one)
        try one.append(engine.takeOutbox(), state: engine.state)
        #expect(two.synchronize(&state, keeping: []) == .hosts([RolloutEngineTests.host(0), "newcomer"]))
        #expect(state.rollouts[rollout.id]?.hosts[RolloutEngineTests.host(0)]?.phase == .admitted)
        #expect(state.rollouts[rollout.id]?.hosts["newcomer"]?.phase == .admitted, "joined as a latecomer")
        #expect(state.agents["newcomer"]?.version == "1.0.0")

        // A host with a change of this instance on its way to Redis is left as it is here:
        // the other instance's write is older than ours, which lands after it.
        _ = engine.beat(RolloutEngineTests.beat(RolloutEngineTests.host(2)), now: 2, ledger: one)
        try one.append(engine.takeOutbox(), state: engine.state)
        #expect(two.synchronize(&state, keeping: [RolloutEngineTests.host(2)]) == .nothing)
        #expect(state.rollouts[rollout.id]?.hosts[RolloutEngineTests.host(2)]?.phase == .pending)

        // Its own writes are not read back.
        var mine = engine
        _ = mine.beat(RolloutEngineTests.beat("own", version: "0.9.0"), now: 3)
        try two.append(mine.takeOutbox(), state: mine.state)
        #expect(two.synchronize(&state, keeping: []) == .nothing)

        // Trimmed past this instance's place: everything again, nothing lost.
        #expect(try await redis.cli(["XTRIM", "fledge:changes", "MAXLEN", "0"]) != "0")
        var finished = engine
        RolloutEngineTests.upgrade(&finished, RolloutEngineTests.host(0), rollout: rollout.id, now: 4)
        try one.append(finished.takeOutbox(), state: finished.state)
        #expect(two.synchronize(&state, keeping: []) == .everything)
        #expect(state.rollouts[rollout.id]?.hosts[RolloutEngineTests.host(0)]?.phase == .done)
        #expect(state.rollouts[rollout.id]?.hosts[RolloutEngineTests.host(2)]?.phase == .admitted)
        #expect(state.agents["own"] != nil && state.agents.count == 5)
        #expect(two.synchronize(&state, keeping: []) == .nothing, "following the stream again")
    }

    /// Hosts beating at one instance are seen alive by the other (the one that sweeps), so it
    /// never sets them absent or forgets them; a host that beat nowhere is set absent.
    @Test func livenessIsSharedBetweenInstances() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let one = try Self.store(redis), two = try Self.store(redis)
        var engine = RolloutEngineTests.fleet(2)  // seen at time 0
        let rollout = try engine.create(RolloutEngineTests.spec(maxConcurrent: 1), now: 1)
        try one.append(engine.takeOutbox(), state: engine.state)
        var here = try one.load()
        _ = one.refresh(&here, host: RolloutEngineTests.host(0), keeping: [])  // a beat at one, now
        _ = one.synchronize(&here, keeping: [])  // shared

        var sweeper = RolloutEngine(state: try two.load())
        #expect(two.lastSeen(of: [RolloutEngineTests.host(0), RolloutEngineTests.host(1)]).keys.sorted() == [RolloutEngineTests.host(0)])
        sweeper.sweep(now: UnixTime.now, ledger: two)
        let hosts = try #require(sweeper.state.rollouts[rollout.id]?.hosts)
        #expect(hosts[RolloutEngineTests.host(0)]?.phase == .pending, "beat at the other instance: present")
        #expect(hosts[RolloutEngineTests.host(1)]?.phase == .absent, "beat nowhere for 180 s: absent")
        #expect((sweeper.state.agents[RolloutEngineTests.host(0)]?.lastSeen ?? 0) >= UnixTime.now - 5)
        #expect(try await redis.cli(["ZCARD", "fledge:seen"]) == "1")
    }

    /// One instance sweeps at a time; when its lease lapses (it died) another takes over.
    @Test func oneInstanceSweepsAndAnotherTakesOver() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let one = try Self.store(redis), two = try Self.store(redis)
        #expect(one.claimSweep())
        #expect(!two.claimSweep())
        #expect(one.claimSweep(), "renewed")
        _ = try await redis.cli(["PEXPIRE", "fledge:sweeper", "1"])  // as if one stopped renewing
        try await Task.sleep(for: .milliseconds(20))
        #expect(two.claimSweep())
        #expect(!one.claimSweep())
    }

    /// A transaction goes in one round trip and is all or nothing: a command Redis refuses
    /// to queue aborts it whole, and the connection stays usable.
    @Test func aTransactionIsAllOrNothing() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let client = try RedisClient(url: redis.url)
        try client.transaction([["SET", "a", "1"], ["INCR", "n"], ["INCR", "n"]])
        #expect(try await redis.cli(["GET", "n"]) == "2")
        #expect(throws: RedisError.self) { try client.transaction([["SET", "c", "3"], ["NO-SUCH-COMMAND"], ["INCR", "n"]]) }
        #expect(try await redis.cli(["EXISTS", "c"]) == "0")
        #expect(try client.command(["GET", "n"]).text == "2", "nothing of it applied; the connection still works")
        let replies = try client.pipeline([["GET", "a"], ["HGET", "a", "x"], ["GET", "missing"]])
        #expect(replies.count == 3 && replies[0] == .string(Array("1".utf8)) && replies[2] == .null)
        if case .error = replies[1] {} else { Issue.record("a wrong-type error stays in its place: \(replies[1])") }
    }

    /// Group commit on Redis: first beats arriving together share MULTI/EXEC transactions
    /// (one fsync each with appendfsync always), and every one is in Redis before its answer.
    @Test func concurrentBeatsShareTransactions() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let plane = try ControlPlane(store: try Self.store(redis), logger: Logger(label: "test"), clock: { 10 })
        _ = try await redis.cli(["CONFIG", "RESETSTAT"])
        let stored = await GroupCommitTests.beatAll(plane, count: 200)
        #expect(stored.count == 200 && stored.allSatisfy { $0 }, "every beat answered as stored")
        #expect(try await redis.cli(["HLEN", "fledge:agents"]) == "200", "every new host durable before its answer")
        let stats = try await redis.cli(["INFO", "commandstats"])
        let exec = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_exec:") }
        let calls = exec.flatMap { $0.split(separator: ",").first?.split(separator: "=").last }.flatMap { Int($0) } ?? 0
        #expect(calls > 0 && calls < 100, "200 first beats shared \(calls) transactions")
    }

    /// A rollout created at one instance wakes the hosts long-polling at another on the next
    /// beat that instance answers (past the 250 ms epoch interval), not at its next sweep:
    /// no sweep runs here at all.
    @Test func aRolloutStartedElsewhereWakesHostsWaitingHere() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let a = try ControlPlane(store: try Self.store(redis), logger: Logger(label: "a"), clock: { 100 })
        let b = try ControlPlane(store: try Self.store(redis), logger: Logger(label: "b"), clock: { 100 })
        for i in 0..<2 { _ = await a.beat(RolloutEngineTests.beat(RolloutEngineTests.host(i))) }
        let waiting = Task { await b.signal.wait(upTo: .seconds(5), host: RolloutEngineTests.host(0)) }
        for _ in 0..<200 where b.signal.waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
        _ = try await a.create(RolloutEngineTests.spec())
        try await Task.sleep(for: .milliseconds(300))
        _ = await b.beat(RolloutEngineTests.beat(RolloutEngineTests.host(1)))
        #expect(await waiting.value, "woken by b's beat, not by its wait running out")
    }

    /// When the epoch or the change stream is due, one quiet beat goes to the actor to read it;
    /// the others stay quiet rather than queue behind it, until the read is done or has taken
    /// longer than the change stream's interval (then another beat goes).
    @Test func oneQuietBeatGoesToReadWhatIsDue() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        // Intervals of a second, so a slow moment under the full suite cannot make a read due.
        let store = RedisStore(
            client: try RedisClient(url: redis.url), logger: Logger(label: "test"), epochInterval: .seconds(1), changesInterval: .seconds(1))
        var state = try store.load()
        _ = store.synchronize(&state, keeping: [])
        #expect(store.quietBeat(from: "a"), "just read: nothing due")
        try await Task.sleep(for: .milliseconds(1_100))
        #expect(!store.quietBeat(from: "a"), "due: this beat goes to read")
        #expect(store.quietBeat(from: "b"), "another beat stays quiet while the first one reads")
        _ = store.refresh(&state, host: "a", keeping: [])
        #expect(store.quietBeat(from: "b"), "read: nothing due")
        try await Task.sleep(for: .milliseconds(1_100))
        #expect(!store.quietBeat(from: "a"))
        try await Task.sleep(for: .milliseconds(1_100))
        #expect(!store.quietBeat(from: "b"), "the first beat never read: after the interval another goes")
    }

    /// A host whose beats are answered off the actor at one instance (quiet) still hears of a
    /// rollout created at another: once the epoch is due to be read (250 ms), its next beat
    /// goes to the actor, which reads it, and is ordered. No sweep runs here.
    @Test func quietBeatsHearOfARolloutStartedElsewhere() async throws {
        let (directory, redis) = try await Self.redis()
        defer { redis.kill(); directory.remove() }
        let a = try ControlPlane(store: try Self.store(redis), logger: Logger(label: "a"), clock: { 100 })
        let b = try ControlPlane(store: try Self.store(redis), logger: Logger(label: "b"), clock: { 100 })
        let host = RolloutEngineTests.host(0)
        _ = await a.beat(RolloutEngineTests.beat(host))
        _ = await b.beat(RolloutEngineTests.beat(host))
        #expect(b.quietHosts == 1)
        _ = try await a.create(RolloutEngineTests.spec())
        var order: UpgradeOrder?
        for _ in 0..<100 where order == nil {
            order = await b.beat(RolloutEngineTests.beat(host)).reply.order
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(order != nil, "ordered by b within 2 s of the rollout's creation at a")
        #expect(b.quietHosts == 0)
    }
}
