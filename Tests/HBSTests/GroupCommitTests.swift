import Foundation
import Synchronization
import Testing
@testable import HBS
@testable import Rollouts
import Wire

/// Group commit: beats that arrive while a write is in flight share the next one, none is
/// answered before its events are durable, and a failed write undoes every change it carried
/// and every change applied on top of it.
@Suite struct GroupCommitTests {
    /// A store whose writes take `milliseconds` (as an fdatasync does) and may fail; it counts
    /// its writes and the hosts it made durable.
    final class SlowStore: FleetStore, Sendable {
        let milliseconds: UInt32
        let failing: Bool
        let writes = Atomic<Int>(0)
        let durableHosts = Mutex<Set<String>>([])

        init(milliseconds: UInt32, failing: Bool = false) {
            self.milliseconds = milliseconds
            self.failing = failing
        }

        func load() throws(StoreError) -> FleetState { FleetState() }

        func events(of rollout: String, after: Int) -> [RolloutEvent] { [] }

        func prepare(_ events: [FleetEvent], state: FleetState) throws(StoreError) -> DurableWrite {
            { () throws(StoreError) in
                usleep(self.milliseconds * 1000)
                if self.failing { throw .io("disk full") }
                self.writes.add(1, ordering: .relaxed)
                self.durableHosts.withLock { hosts in
                    for case .agentSeen(let agent) in events { hosts.insert(agent.hostname) }
                }
            }
        }
    }

    static func beatAll(_ plane: ControlPlane, count: Int) async -> [Bool] {
        await withTaskGroup(of: Bool.self) { group in
            for i in 0..<count { group.addTask { await plane.beat(RolloutEngineTests.beat("h\(i)")).stored } }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }

    @Test func concurrentBeatsShareWrites() async throws {
        let store = SlowStore(milliseconds: 5)
        let plane = try ControlPlane(store: store, logger: .init(label: "test"), clock: { 10 })
        let stored = await Self.beatAll(plane, count: 200)
        #expect(stored.count == 200 && stored.allSatisfy { $0 }, "every beat answered as stored")
        #expect(store.durableHosts.withLock { $0.count } == 200, "every new host durable before its answer")
        let writes = store.writes.load(ordering: .relaxed)
        #expect(writes < 50, "200 first beats shared \(writes) writes")
        #expect(await plane.state.agents.count == 200)
    }

    @Test func aFailedWriteUndoesEverythingItCarriedAndAfter() async throws {
        let store = SlowStore(milliseconds: 5, failing: true)
        let plane = try ControlPlane(store: store, logger: .init(label: "test"), clock: { 10 })
        let stored = await Self.beatAll(plane, count: 100)
        #expect(stored.allSatisfy { !$0 }, "no beat is answered as stored")
        #expect(await plane.state.agents.isEmpty, "and none of them stays done")
    }
}
