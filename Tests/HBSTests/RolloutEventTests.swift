import FledgeTesting
import Foundation
import Logging
import SystemPackage
import Testing
@testable import HBS
@testable import Rollouts
import Wire

/// What an operator follows: the events the engine derives from its changes, kept by both
/// stores (across a restart, and shared by instances on Redis).
@Suite struct RolloutEventTests {
    typealias Engine = RolloutEngineTests

    /// The notes an engine has left in its outbox, oldest first.
    static func notes(_ engine: inout RolloutEngine) -> [RolloutEvent] {
        engine.takeOutbox().compactMap { if case .noted(_, let note) = $0 { note } else { nil } }
    }

    @Test func aRolloutTellsItsStoryOnce() throws {
        var engine = Engine.fleet(3)
        _ = engine.takeOutbox()
        let rollout = try engine.create(Engine.spec(canary: 1, batch: 2, budget: 0), now: 1)
        #expect(Self.notes(&engine).map(\.kind) == [.created])
        let canary = rollout.hosts.first { $0.value.batch == 0 }!.key
        let others = rollout.hosts.filter { $0.value.batch == 1 }.keys.sorted()
        _ = engine.beat(Engine.beat(canary), now: 2)
        #expect(Self.notes(&engine).map { "\($0.kind) \($0.host ?? "") \($0.batch ?? -1)" } == ["batchStarted  0", "admitted \(canary) 0"])
        // Progress beats say nothing new; the same beat twice says nothing twice.
        _ = engine.beat(Engine.beat(canary, state: .downloading, rollout: rollout.id), now: 3)
        _ = engine.beat(Engine.beat(canary, state: .downloading, rollout: rollout.id), now: 3)
        #expect(Self.notes(&engine).isEmpty)
        Engine.upgrade(&engine, canary, rollout: rollout.id, now: 4)
        #expect(Self.notes(&engine).map(\.kind) == [.done])
        for host in others { _ = engine.beat(Engine.beat(host), now: 5) }
        #expect(Self.notes(&engine).map(\.kind) == [.batchStarted, .admitted, .admitted])
        _ = engine.beat(Engine.beat(others[0], state: .failed, rollout: rollout.id, error: "disk full"), now: 6)
        let failed = Self.notes(&engine)
        #expect(failed.map(\.kind) == [.failed, .paused], "a budget of 0 pauses it")
        #expect(failed.first?.reason == "disk full" && failed.first?.host == others[0])
        #expect(failed.last?.reason?.contains("failure budget") == true, "\(String(describing: failed.last?.reason))")
        _ = try engine.resume(rollout.id, now: 7, reason: "resumed by 127.0.0.1")
        #expect(Self.notes(&engine).map { "\($0.kind) \($0.reason ?? "")" } == ["resumed resumed by 127.0.0.1"])
        _ = try engine.rollback(rollout.id, now: 8)
        let back = Self.notes(&engine)
        #expect(back.map(\.kind) == [.aborted, .created, .rolledBack], "\(back)")
    }

    /// Written through the embedded store, read back by another store on the same directory
    /// (a restarted HBS); a dropped rollout takes its events along.
    @Test func theEmbeddedStoreKeepsEventsAcrossARestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = EmbeddedStore(directory: directory.path)
        let plane = try ControlPlane(store: store, logger: Logger(label: "test"), clock: { 100 })
        for i in 0..<2 { _ = await plane.beat(Engine.beat(Engine.host(i))) }
        let rollout = try await plane.create(Engine.spec())
        _ = await plane.beat(Engine.beat(Engine.host(0)))
        _ = try await plane.pause(rollout.id, by: "10.0.0.9")
        let events = try plane.events(of: rollout.id, after: 0)
        #expect(events.map(\.kind) == [.created, .batchStarted, .admitted, .paused])
        #expect(events.allSatisfy { $0.at == 100 }, "stamped when stored")
        #expect(events.last?.reason == "paused by 10.0.0.9")
        #expect(try plane.events(of: rollout.id, after: 3).map(\.kind) == [.paused])

        let restarted = EmbeddedStore(directory: directory.path)
        _ = try restarted.load()
        #expect(try restarted.events(of: rollout.id, after: 0) == events)
        let journals = try FileManager.default.contentsOfDirectory(atPath: directory.string).filter { $0.hasPrefix("journal-") }
        #expect(!journals.isEmpty)
        for journal in journals {
            let text = String(decoding: FileManager.default.contents(atPath: directory.string + "/" + journal) ?? Data(), as: UTF8.self)
            #expect(!text.contains("noted"), "events stay out of the journal")
        }
    }

    /// A line torn by a crash is dropped, and the next event starts on a line of its own;
    /// a reader that loaded the file before an append sees that append too.
    @Test func aTornLineLosesOnlyItself() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.string + "/r1.jsonl"
        try Data("{\"at\":1,\"kind\":\"created\"}\n{\"at\":2,\"kind\":\"batchSta".utf8).write(to: URL(fileURLWithPath: path))
        let log = RolloutEventLog(directory: directory.path)
        #expect(try log.events(of: "r1", after: 0).map(\.kind) == [.created])
        log.append([("r1", RolloutEvent(.admitted, at: 3, host: "h1", batch: 0))])
        #expect(try log.events(of: "r1", after: 0).map(\.kind) == [.created, .admitted])
        let reread = RolloutEventLog(directory: directory.path)
        #expect(try reread.events(of: "r1", after: 0).map(\.kind) == [.created, .admitted], "the file says the same after a restart")
        #expect(try reread.events(of: "r1", after: 1).map(\.host) == ["h1"])
    }

    /// Two instances on one redis-server: what one records, the other streams.
    @Test func instancesOnRedisShareEvents() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let redis = try await RedisProcess.start(directory: directory.string)
        defer { redis.kill() }
        let a = try ControlPlane(store: try RedisStoreTests.store(redis), logger: Logger(label: "a"), clock: { 100 })
        let b = try ControlPlane(store: try RedisStoreTests.store(redis), logger: Logger(label: "b"), clock: { 100 })
        _ = await a.beat(Engine.beat(Engine.host(0)))
        let rollout = try await a.create(Engine.spec())
        await b.sweep()  // b learns of the rollout, as its sweep does every second
        _ = await b.beat(Engine.beat(Engine.host(0)))  // admitted by b
        let seen = try a.events(of: rollout.id, after: 0)
        #expect(seen.map(\.kind) == [.created, .batchStarted, .admitted], "\(seen)")
        #expect(try b.events(of: rollout.id, after: 1).map(\.kind) == [.batchStarted, .admitted])
        // Both instances sweep; the rollout's end is told once.
        _ = await a.beat(Engine.beat(Engine.host(0), version: "2.0.0", state: .idle))
        await a.sweep()
        await b.sweep()
        await a.sweep()
        let kinds = try b.events(of: rollout.id, after: 0).map(\.kind)
        #expect(kinds.filter { $0 == .completed }.count == 1 && kinds.filter { $0 == .batchStarted }.count == 1, "\(kinds)")
    }
}
