import FledgeTesting
import Foundation
import LocalFleet
import Testing

/// The local fleet the demo and the fleet bench run, small: three agents, a canary then the
/// rest from the canary, and nothing left running afterwards.
@Suite(.serialized) struct LocalFleetTests {
    @Test func upgradesAndStopsEverything() async throws {
        try await TemporaryDirectory.with("fledge-local-fleet") { directory in
            var plan = FleetPlan()
            plan.agents = 3
            plan.fastBeatSeconds = 0.25
            let fleet = try await LocalFleet.start(plan, in: directory.string)
            let pids = [fleet.hbs.child.pid] + fleet.origins.map(\.seeder.child.pid) + fleet.hosts.map(\.supervisorPID)
                + fleet.hosts.flatMap { ProcFS.descendants(of: $0.supervisorPID) }
            do {
                let release = try await fleet.publishTarget()
                var rollout = RolloutPlan()
                rollout.canary = 1
                let (id, postedAt) = try await fleet.startRollout(rollout)
                let timeline = try await fleet.watch(id, postedAt: postedAt, timeout: .seconds(60))
                #expect(timeline.last?.progress.done == 3)
                #expect(timeline.seconds(toFraction: 1) != nil)
                let versions = try await fleet.reportedVersions()
                for host in fleet.hosts {
                    #expect(versions[host.name] == "1.1.0", "\(host.name): \(host.log.suffix(1500))")
                    #expect(host.installedVersion == "1.1.0")
                }
                // The origin served the canary; the others could take it from the canary.
                #expect((timeline.last?.originBytes ?? 0) >= release.totalSize)
                #expect((timeline.last?.originBytes ?? 0) + (timeline.last?.peerBytes ?? 0) >= 3 * release.totalSize)
            } catch {
                await fleet.stop()
                throw error
            }
            await fleet.stop()
            #expect(pids.filter(Self.alive).isEmpty, "every process stopped")
        }
    }

    /// Whether `pid` runs (a zombie waiting to be reaped does not).
    static func alive(_ pid: Int32) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
              let close = data.lastIndex(of: UInt8(ascii: ")")), close + 2 < data.count else { return false }
        return data[close + 2] != UInt8(ascii: "Z")
    }
}
