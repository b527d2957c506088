import FledgeTesting
import Foundation
import Logging
import Testing
@testable import HBS
@testable import Rollouts
import Wire

/// Two instances on one redis-server race a rollout to its end, many times over: beats land on
/// either at random, both sweep. Every round both must agree the rollout completed with every
/// host done (the disagreement issue 14 found: one instance stuck on a stale host table), the
/// limit must hold at every step, and the end must be told once (issue 14, item 6).
@Suite struct InstanceRaceTests {
    typealias Engine = RolloutEngineTests

    @Test func twoInstancesAgreeAtTheEndEveryTime() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let redis = try await RedisProcess.start(directory: directory.string)
        defer { redis.kill() }
        var generator = SystemRandomNumberGenerator()
        let hosts = (0..<24).map(Engine.host)
        for round in 0..<40 {
            _ = try await redis.cli(["FLUSHALL"])
            let planes = try (0..<2).map { _ in try ControlPlane(store: try RedisStoreTests.store(redis), logger: Logger(label: "race")) }
            var versions = Dictionary(uniqueKeysWithValues: hosts.map { ($0, "1.0.0") })
            for host in hosts { _ = await planes.randomElement(using: &generator)!.beat(Engine.beat(host)) }
            let rollout = try await planes[round % 2].create(Engine.spec(maxConcurrent: 4))
            for plane in planes { await plane.sweep() }
            var steps = 0
            var mostActive = 0
            while steps < 60 {
                steps += 1
                for host in hosts.shuffled(using: &generator) {
                    let plane = planes.randomElement(using: &generator)!
                    let (reply, _) = await plane.beat(Engine.beat(host, version: versions[host]!))
                    // An ordered host has it at once: its next beat is on the new version.
                    if reply.order != nil { versions[host] = "2.0.0" }
                }
                for plane in planes.shuffled(using: &generator) { await plane.sweep() }
                let states = await [planes[0].state, planes[1].state]
                mostActive = max(mostActive, states.map { $0.rollouts[rollout.id]?.activeCount ?? 0 }.max() ?? 0)
                if states.allSatisfy({ $0.rollouts[rollout.id]?.phase == .completed }) { break }
            }
            for (index, plane) in planes.enumerated() {
                let seen = await plane.state.rollouts[rollout.id]
                #expect(seen?.phase == .completed && seen?.count(.done) == hosts.count,
                        "round \(round), instance \(index): \(seen?.phase.rawValue ?? "none"), \(seen?.count(.done) ?? 0) done after \(steps) steps")
            }
            #expect(mostActive <= 4, "round \(round): \(mostActive) upgrading at once")
            let kinds = try planes[0].events(of: rollout.id, after: 0).map(\.kind)
            #expect(kinds.filter { $0 == .completed }.count == 1 && kinds.filter { $0 == .admitted }.count == hosts.count,
                    "round \(round): \(kinds.filter { $0 == .completed }.count) completed, \(kinds.filter { $0 == .admitted }.count) admitted")
        }
    }
}
