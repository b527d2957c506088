import Foundation
import FledgeTesting
import SystemPackage
import Testing
@testable import HBS
@testable import Rollouts
import Wire

/// The embedded store: what was appended survives, a torn last line is dropped, compaction
/// never replays old events over newer state.
@Suite struct EmbeddedStoreTests {
    static func events() throws -> (events: [FleetEvent], state: FleetState) {
        var engine = RolloutEngineTests.fleet(3)
        let rollout = try engine.create(RolloutEngineTests.spec(), now: 1)
        for i in 0..<3 { _ = engine.beat(RolloutEngineTests.beat(RolloutEngineTests.host(i)), now: 2) }
        RolloutEngineTests.upgrade(&engine, RolloutEngineTests.host(0), rollout: rollout.id, now: 3)
        return (engine.takeOutbox(), engine.state)
    }

    /// A rollout's hosts still as created are stored as lists of names by batch and version,
    /// the others as records; either way, and from the older form with a record for every
    /// host, it reads back the same.
    @Test func untouchedHostsAreStoredAsListsOfNames() throws {
        var engine = RolloutEngineTests.fleet(6)
        let created = try engine.create(RolloutEngineTests.spec(canary: 1, batch: 2), now: 1)
        _ = engine.beat(RolloutEngineTests.beat(RolloutEngineTests.host(0)), now: 2)
        let rollout = try #require(engine.state.rollouts[created.id])
        #expect(rollout.hosts[RolloutEngineTests.host(0)]?.phase == .admitted)

        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(rollout)) as? [String: Any])
        let records = try #require(json["hosts"] as? [String: Any])
        #expect(Array(records.keys) == [RolloutEngineTests.host(0)], "only the admitted host has a record")
        let lists = try #require(json["untouched"] as? [[String: Any]])
        #expect(lists.map { $0["batch"] as? Int } == [1, 2, 3])
        #expect(lists.map { Set($0["hosts"] as? [String] ?? []) } == [[1, 2], [3, 4], [5]].map { Set($0.map(RolloutEngineTests.host)) })
        #expect(try JSONDecoder().decode(Rollout.self, from: JSONEncoder().encode(rollout)) == rollout)

        // The form before lists of names: a record for every host.
        var older = json
        older["untouched"] = nil
        older["hosts"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(rollout.hosts))
        #expect(try JSONDecoder().decode(Rollout.self, from: JSONSerialization.data(withJSONObject: older)) == rollout)
    }

    @Test func appendedEventsSurviveARestart() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (events, state) = try Self.events()
        let store = EmbeddedStore(directory: directory.path)
        #expect(try store.load() == FleetState())
        try store.append(events, state: state)
        let reloaded = try EmbeddedStore(directory: directory.path).load()
        #expect(reloaded.rollouts == state.rollouts)
        #expect(Set(reloaded.agents.keys) == Set(state.agents.keys))
    }

    @Test func tornLastLineIsDropped() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (events, state) = try Self.events()
        let store = EmbeddedStore(directory: directory.path)
        _ = try store.load()
        try store.append(Array(events.dropLast()), state: state)
        let journal = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.string).first { $0.hasPrefix("journal-") })
        let handle = try FileHandle(forWritingTo: directory.url.appendingPathComponent(journal))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"hostUpdated\":{\"rollout\":\"r1\",".utf8))  // killed mid-write
        try handle.close()
        var expected = FleetState()
        for event in events.dropLast() { expected.apply(event) }
        #expect(try EmbeddedStore(directory: directory.path).load().rollouts == expected.rollouts)
    }

    @Test func corruptJournalIsAClearError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (events, state) = try Self.events()
        let store = EmbeddedStore(directory: directory.path)
        _ = try store.load()
        try store.append(events, state: state)
        let journal = try #require(try FileManager.default.contentsOfDirectory(atPath: directory.string).first { $0.hasPrefix("journal-") })
        var text = try String(contentsOf: directory.url.appendingPathComponent(journal), encoding: .utf8)
        text = "garbage\n" + text
        try text.write(to: directory.url.appendingPathComponent(journal), atomically: true, encoding: .utf8)
        #expect(throws: StoreError.self) { try EmbeddedStore(directory: directory.path).load() }
    }

    @Test func compactionKeepsEverything() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (events, state) = try Self.events()
        let store = EmbeddedStore(directory: directory.path, compactAfter: 3)
        _ = try store.load()
        // Each append with the state as it is after that event, as the control plane passes it.
        var running = FleetState()
        for event in events {
            running.apply(event)
            try store.append([event], state: running)  // compacts several times
        }
        #expect(running.rollouts == state.rollouts)
        let journals = try FileManager.default.contentsOfDirectory(atPath: directory.string).filter { $0.hasPrefix("journal-") }
        #expect(journals.count == 1, "old generations are removed: \(journals)")
        #expect(try EmbeddedStore(directory: directory.path).load().rollouts == state.rollouts)
    }
}

/// The control plane over a store that fails: nothing it could not store stays done.
@Suite struct ControlPlaneStoreFailureTests {
    /// A store whose appends fail while `failing` is set.
    final class FlakyStore: FleetStore, @unchecked Sendable {
        var failing = false
        var appended: [FleetEvent] = []
        func load() throws(StoreError) -> FleetState { FleetState() }
        func prepare(_ events: [FleetEvent], state: FleetState) throws(StoreError) -> DurableWrite {
            { () throws(StoreError) in
                if self.failing { throw .io("disk full") }
                self.appended += events
            }
        }
        func events(of rollout: String, after: Int) -> [RolloutEvent] { [] }
    }

    @Test func noOrderIsSentThatIsNotDurable() async throws {
        let store = FlakyStore()
        let plane = try ControlPlane(store: store, logger: .init(label: "test"), clock: { 10 })
        _ = await plane.beat(RolloutEngineTests.beat("a"))
        _ = try await plane.create(RolloutEngineTests.spec())
        store.failing = true
        let (refused, stored) = await plane.beat(RolloutEngineTests.beat("a"))
        #expect(!stored)
        #expect(refused.order == nil, "an admission that could not be stored sends no order")
        #expect(await plane.state.activeRollout?.hosts["a"]?.phase == .pending, "and is undone")
        store.failing = false
        let (granted, _) = await plane.beat(RolloutEngineTests.beat("a"))
        #expect(granted.order != nil)
        #expect(store.appended.contains { if case .hostUpdated(_, "a", let p) = $0 { p.phase == .admitted } else { false } })
    }
}
