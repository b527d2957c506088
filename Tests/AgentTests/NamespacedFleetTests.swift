import FledgeTesting
import Foundation
import LocalFleet
import Testing

/// The local fleet with kernel-shaped links (`FleetNetwork.namespaces`), small: two agents and
/// an origin, each in a network namespace of its own on a bridge, `tc tbf` on every link and
/// Fledge's rate limits off. The upgrade completes, agents beat from their namespace addresses
/// and serve each other there, the kernel's cap holds, and nothing is left afterwards: no
/// process, no namespace, no link.
@Suite(.serialized) struct NamespacedFleetTests {
    /// Each agent's cap both ways (64 Mbit/s); the origin has twice that. The release is the
    /// debug agent as built (about 40 MB: it must run, so it cannot be smaller), about 5 s at
    /// the cap.
    static let cap: Int64 = 8_000_000

    @Test(.enabled(
        if: KernelLinks.unavailableReason() == nil,
        "needs root, ip and tc (iproute2) and a kernel with network namespaces, veth, bridges and tbf; KernelLinks.unavailableReason() says which is missing"))
    func kernelShapesTheLinks() async throws {
        try await TemporaryDirectory.with("fledge-netns-fleet") { directory in
            var plan = FleetPlan()
            plan.network = .namespaces
            plan.agents = 2
            plan.fastBeatSeconds = 0.25
            plan.agentDownloadBytesPerSecond = Self.cap
            plan.agentUploadBytesPerSecond = Self.cap
            plan.originBytesPerSecond = 2 * Self.cap
            // A swarm with one seed: the other agent takes its pieces from the seed, across
            // the bridge.
            plan.pieceRelay = true
            plan.cdnSeeds = 1
            let fleet = try await LocalFleet.start(plan, in: directory.string)
            let links = try #require(fleet.links)
            let pids = [fleet.hbs.child.pid] + fleet.origins.map(\.seeder.child.pid) + fleet.hosts.map(\.supervisorPID)
                + fleet.hosts.flatMap { ProcFS.descendants(of: $0.supervisorPID) }
            do {
                try await upgrade(fleet, links)
            } catch {
                await fleet.stop()
                throw error
            }
            await fleet.stop()
            #expect(pids.filter(LocalFleetTests.alive).isEmpty, "every process stopped")
            #expect(Self.leftovers(links.prefix).isEmpty, "every namespace and link removed")
        }
    }

    private func upgrade(_ fleet: LocalFleet, _ links: KernelLinks) async throws {
        // Each agent reports the address it beats from (its namespace's) and serves peers there.
        for host in fleet.hosts {
            let seen = try await fleet.hbs.agent(host.name)
            #expect(host.address.hasPrefix("10.231.2."))
            #expect(seen?["ip"] as? String == host.address, "\(host.name): HBS sees \(String(describing: seen))")
            #expect(Loopback.accepts(port: host.peerPort, host: host.address), "\(host.name)'s peer server on \(host.address)")
        }
        let release = try await fleet.publishTarget()
        let before = links.counters()
        let (id, postedAt) = try await fleet.startRollout(RolloutPlan())
        // When each agent's log says it started downloading, and that it switched (verified,
        // staged, self-tested): an upper bound of its download's time, read every 100 ms.
        var started: [String: ContinuousClock.Instant] = [:], switched: [String: ContinuousClock.Instant] = [:]
        let timeline = try await fleet.watch(id, postedAt: postedAt, every: .milliseconds(100), timeout: .seconds(60)) { _ in
            let now = ContinuousClock.now
            for host in fleet.hosts {
                let log = host.log
                if started[host.name] == nil, log.contains("upgrading to") { started[host.name] = now }
                if switched[host.name] == nil, log.contains("switched to") { switched[host.name] = now }
            }
        }
        let carried = links.counters() - before
        #expect(timeline.last?.progress.done == 2)
        let versions = try await fleet.reportedVersions()
        for host in fleet.hosts {
            #expect(versions[host.name] == "1.1.0", "\(host.name): \(host.log.suffix(1500))")
            #expect(host.installedVersion == "1.1.0")
        }

        // The kernel's cap holds: no agent got the release faster than its downlink allows
        // (less a margin: the log is read every 100 ms). Unshaped, a veth carries it in well
        // under a second.
        let floor = 0.7 * Double(release.totalSize) / Double(Self.cap)
        for host in fleet.hosts {
            let begin = try #require(started[host.name]), end = try #require(switched[host.name])
            let seconds = Double((end - begin).components.seconds) + Double((end - begin).components.attoseconds) / 1e18
            #expect(seconds >= floor, "\(host.name) downloaded \(release.totalSize) bytes in \(seconds) s; the cap allows no less than \(floor / 0.7) s")
        }
        // Every byte went through the shaped links: the agents' downlinks carried the release
        // twice (frames: a little more), and the peer traffic crossed the bridge from the
        // seed's namespace, as its uplink's counter shows.
        let served = (origin: timeline.last?.originBytes ?? 0, peers: timeline.last?.peerBytes ?? 0)
        #expect(served.origin + served.peers >= 2 * release.totalSize)
        #expect(served.peers > 0, "the second agent took pieces from the seed")
        #expect(carried.agentsDown >= 2 * release.totalSize)
        #expect(carried.agentsUp >= served.peers)
        #expect(carried.originsUp >= served.origin)
    }

    /// Links (root namespace) and network namespaces still named with `prefix`.
    static func leftovers(_ prefix: String) -> [String] {
        let links = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []
        let namespaces = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        return (links + namespaces).filter { $0.hasPrefix(prefix + "-") }
    }
}

/// The tbf parameters a kernel-shaped link gets, at the ends of the range they are meant for.
struct TokenBucketTests {
    @Test func rateBurstAndQueueFromFourMegabitsToOneGigabit() {
        // 4 Mbit/s of payload: frames at 1514/1448 of it, the 16 KiB floor, 100 ms of queue.
        let slow = TokenBucket(payloadBytesPerSecond: 500_000)
        #expect(slow.frameBytesPerSecond == 522_791)
        #expect(slow.burstBytes == 16_384)
        #expect(slow.limitBytes == 16_384 + 52_279)
        #expect(slow.tcArguments == ["tbf", "rate", "4182328bit", "burst", "16384", "limit", "68663"])
        // 1 Gbit/s: 1 ms of burst.
        let fast = TokenBucket(payloadBytesPerSecond: 125_000_000)
        #expect(fast.burstBytes == fast.frameBytesPerSecond / 1000)
        #expect(fast.limitBytes == fast.burstBytes + fast.frameBytesPerSecond / 10)
    }
}
