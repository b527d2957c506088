import FledgeTesting
import Testing
@testable import Rollouts
import Wire

/// The source planner over random fleets: limits never exceeded, locality preferred, every
/// admitted host has a source, CDNs kept as a fallback, batches spread over CDNs.
@Suite struct SourcePlannerTests {
    /// An agent with a unique address (only ever a string here: no traffic).
    static func agent(_ name: String, idc: String, rack: String, holds: Bool = false, port: Int? = 7070) -> AgentRecord {
        let number = Int(name.utf8.reduce(UInt32(7)) { $0 &* 31 &+ UInt32($1) } % 60_000)
        return AgentRecord(HeartbeatRequest(
            hostname: name, ip: "127.1.\(number / 250).\(number % 250 + 1)", version: holds ? "2.0.0" : "1.0.0",
            labels: ["idc": idc, "rack": rack], held: holds ? [HeldRelease(name: "fledge-agent", version: "2.0.0", complete: true)] : [],
            peerPort: port), now: 0)
    }

    static func spec(cdns: [CDNSource], peers: Bool = true) -> RolloutSpec {
        RolloutSpec(name: "fledge-agent", version: "2.0.0", locator: .fledge(manifestURL: nil), sources: cdns, peersMayServe: peers)
    }

    @Test func limitsHoldOverRandomFleets() {
        var generator = SplitMix64(seed: 42)
        for round in 0..<200 {
            var configuration = PlannerConfiguration()
            configuration.hostDownlinkMbps = 1000
            configuration.peerFanout = Int.random(in: 1...5, using: &generator)
            let planner = SourcePlanner(configuration: configuration)
            let cdns = (0..<Int.random(in: 1...3, using: &generator)).map {
                CDNSource(url: "http://cdn\($0).test", capacityMbps: Double(Int.random(in: 1...8, using: &generator)) * 1000,
                          labels: ["idc": "idc\($0 % 2)"])
            }
            let spec = Self.spec(cdns: cdns)
            let fleet = (0..<Int.random(in: 5...60, using: &generator)).map {
                Self.agent("h\(round)-\($0)", idc: "idc\(Int.random(in: 0...1, using: &generator))",
                           rack: "r\(Int.random(in: 0...3, using: &generator))", holds: Bool.random(using: &generator))
            }
            var load: [String: Int] = [:]
            let limit: (String) -> Int = { url in
                cdns.first { $0.url == url }.map(planner.slots(of:)) ?? configuration.peerFanout
            }
            for host in fleet where !planner.serves(host, name: "fledge-agent", version: "2.0.0") {
                guard let sources = planner.plan(for: host, spec: spec, batch: round % 3, peers: fleet, load: load)?.sources else {
                    // Refused only when every source is at its limit.
                    let peersFull = fleet.filter { planner.serves($0, name: "fledge-agent", version: "2.0.0") && $0.hostname != host.hostname }
                        .allSatisfy { load[$0.peerURL!, default: 0] >= configuration.peerFanout }
                    let cdnsFull = cdns.allSatisfy { load[$0.url, default: 0] >= planner.slots(of: $0) }
                    #expect(peersFull && cdnsFull, "refused though a source had room")
                    continue
                }
                #expect(!sources.isEmpty)
                #expect(Set(sources).count == sources.count, "no source twice")
                #expect(sources.count <= configuration.sourcesPerOrder)
                #expect(!sources.contains(host.peerURL!), "never itself")
                #expect(sources.contains { url in cdns.contains { $0.url == url } }, "a CDN to fall back on")
                let primary = sources[0]
                #expect(load[primary, default: 0] < limit(primary), "primary \(primary) over its limit")
                // Locality: when a peer in the host's rack has a free slot, the primary is one.
                let rackPeers = fleet.filter {
                    $0.hostname != host.hostname && planner.serves($0, name: "fledge-agent", version: "2.0.0")
                        && $0.labels == host.labels && load[$0.peerURL!, default: 0] < configuration.peerFanout
                }
                if !rackPeers.isEmpty {
                    #expect(rackPeers.contains { $0.peerURL == primary }, "a same-rack peer was free, yet the primary is \(primary)")
                }
                load[primary, default: 0] += 1
            }
            for (url, count) in load { #expect(count <= limit(url), "\(url) carries \(count)") }
        }
    }

    @Test func sameRackThenSameIDCThenElsewhere() {
        let host = Self.agent("host", idc: "a", rack: "1")
        let far = Self.agent("far", idc: "b", rack: "1", holds: true)
        let sameIDC = Self.agent("same-idc", idc: "a", rack: "2", holds: true)
        let sameRack = Self.agent("same-rack", idc: "a", rack: "1", holds: true)
        var configuration = PlannerConfiguration()
        configuration.sourcesPerOrder = 4
        let sources = SourcePlanner(configuration: configuration).plan(
            for: host, spec: Self.spec(cdns: [CDNSource(url: "http://cdn.test", capacityMbps: 10_000)]), batch: 0,
            peers: [far, sameIDC, sameRack, host], load: [:])!.sources
        #expect(sources == [sameRack.peerURL!, sameIDC.peerURL!, far.peerURL!, "http://cdn.test"])
    }

    @Test func peersQualifyOnlyWithTheVerifiedRelease() {
        let holder = Self.agent("holder", idc: "a", rack: "1", holds: true)
        var partial = Self.agent("partial", idc: "a", rack: "1")
        partial.held = [HeldRelease(name: "fledge-agent", version: "2.0.0", complete: false, verifiedPieces: 10)]
        let noPort = Self.agent("noport", idc: "a", rack: "1", holds: true, port: nil)
        let planner = SourcePlanner()
        #expect(planner.serves(holder, name: "fledge-agent", version: "2.0.0"))
        #expect(!planner.serves(holder, name: "fledge-agent", version: "2.0.1"))
        #expect(!planner.serves(partial, name: "fledge-agent", version: "2.0.0"))
        #expect(!planner.serves(noPort, name: "fledge-agent", version: "2.0.0"))
        var relay = PlannerConfiguration()
        relay.pieceRelay = true
        #expect(SourcePlanner(configuration: relay).serves(partial, name: "fledge-agent", version: "2.0.0"))
    }

    @Test func batchesSpreadOverCDNs() {
        let planner = SourcePlanner()
        let cdns = (0..<3).map { CDNSource(url: "http://cdn\($0).test", capacityMbps: 10_000) }
        let host = Self.agent("h", idc: "x", rack: "1")
        let primaries = (0..<3).map { planner.plan(for: host, spec: Self.spec(cdns: cdns, peers: false), batch: $0, peers: [], load: [:])!.sources[0] }
        #expect(Set(primaries).count == 3)
    }

    @Test func falconUsesItsOneURL() {
        let spec = RolloutSpec(name: "fledge-agent", version: "6.0.1",
                               locator: .falcon(wgetURL: "http://cdn.test/falcon", type: 0, binMD5: String(repeating: "a", count: 32), cfgMD5: ""),
                               sources: [CDNSource(url: "http://cdn.test/falcon", capacityMbps: 1)])
        let sources = SourcePlanner().plan(for: Self.agent("h", idc: "a", rack: "1"), spec: spec, batch: 0, peers: [], load: ["http://cdn.test/falcon": 99])?.sources
        #expect(sources == ["http://cdn.test/falcon"])
    }

    @Test func aSwarmHasFewSeedsAndEveryoneElseTradesPieces() {
        var configuration = PlannerConfiguration()
        configuration.pieceRelay = true
        configuration.cdnSeeds = 2
        configuration.swarmPeers = 3
        let planner = SourcePlanner(configuration: configuration)
        let cdn = CDNSource(url: "http://cdn.test", capacityMbps: 8_000)
        let spec = Self.spec(cdns: [cdn])
        let fleet = (0..<12).map { Self.agent("s\($0)", idc: "a", rack: "\($0 % 3)") }
        var load: [String: Int] = [:], listings: [String: Int] = [:]
        var admitted: [AgentRecord] = []
        var seeds = 0
        for host in fleet {
            // The engine's candidates: everyone admitted before (fetching, so relaying).
            guard let plan = planner.plan(for: host, spec: spec, batch: 0, peers: admitted, load: load, listings: listings) else {
                Issue.record("\(host.hostname) got no sources though peers had room")
                continue
            }
            #expect(!plan.sources.contains(host.peerURL!), "never itself")
            if plan.sources.first == cdn.url {
                seeds += 1
                #expect(plan.fallbacks.isEmpty)
            } else {
                #expect(plan.fallbacks == [cdn.url], "the CDN only as a last resort")
                #expect(!plan.sources.contains(cdn.url))
            }
            #expect(plan.sources.filter { $0 != cdn.url }.count == min(3, admitted.count))
            load[plan.sources[0], default: 0] += 1
            for url in plan.sources { listings[url, default: 0] += 1 }
            admitted.append(host)
        }
        #expect(seeds == 2, "slots allow 8, seeds are capped at 2")
        for (url, count) in listings where url != cdn.url { #expect(count <= 6, "\(url) listed \(count) times") }
        // Later: more peers for a host that has few, none it already has.
        let more = planner.swarmPeers(for: fleet[0], among: admitted, listings: listings, excluding: [fleet[1].peerURL!], limit: 3)
        #expect(more.count == 3 && !more.contains(fleet[1].peerURL!) && !more.contains(fleet[0].peerURL!))
        // A later batch: a peer holds the release whole, so nobody seeds from the CDN again.
        let whole = Self.agent("whole", idc: "a", rack: "0", holds: true)
        let late = try! #require(planner.plan(for: Self.agent("late", idc: "a", rack: "0"), spec: spec, batch: 1, peers: [whole], load: [:]))
        #expect(late.sources == [whole.peerURL!] && late.fallbacks == [cdn.url])
        // A falcon rollout is never a swarm.
        #expect(!planner.isSwarm(RolloutSpec(name: "a", version: "1.0.0", locator: .falcon(wgetURL: "http://x", type: 0, binMD5: "", cfgMD5: ""), sources: [])))
    }

    /// Without `cdnSeeds`, a CDN seeds as many hosts as it carries at full speed, and each seed
    /// is told its own share of the pieces, spread over every CDN's seeds.
    @Test func seedsFollowCapacityAndGetSharesOfTheirOwn() {
        var configuration = PlannerConfiguration()
        configuration.pieceRelay = true
        configuration.hostDownlinkMbps = 1000
        let planner = SourcePlanner(configuration: configuration)
        let cdns = [CDNSource(url: "http://cdn0.test", capacityMbps: 3000), CDNSource(url: "http://cdn1.test", capacityMbps: 2000)]
        let spec = Self.spec(cdns: cdns)
        var load: [String: Int] = [:], listings: [String: Int] = [:]
        var admitted: [AgentRecord] = []
        var shares: [SeedShare] = []
        for index in 0..<12 {
            let host = Self.agent("seed\(index)", idc: "a", rack: "r\(index % 3)")
            let plan = try! #require(planner.plan(for: host, spec: spec, batch: 0, peers: admitted, load: load, listings: listings))
            if let share = plan.seedShare {
                #expect(cdns.contains { $0.url == plan.sources[0] }, "a seed fetches from its CDN first")
                shares.append(share)
            } else {
                #expect(plan.fallbacks.count == 2)
            }
            load[plan.sources[0], default: 0] += 1
            for url in plan.sources { listings[url, default: 0] += 1 }
            admitted.append(host)
        }
        #expect(shares.count == 5, "3 + 2 seeds: each CDN's capacity over a host's downlink")
        #expect(Set(shares.map(\.index)) == Set(0..<5) && shares.allSatisfy { $0.count == 5 }, "every seed a share of its own")
    }

    /// A swarm order lists the nearest peers first, then others drawn from the whole swarm; and
    /// never a source the host (or enough hosts) reported.
    @Test func swarmPeersAreNearThenRandomAndNeverExcluded() {
        var configuration = PlannerConfiguration()
        configuration.pieceRelay = true
        configuration.swarmPeers = 6
        configuration.nearPeers = 2
        let planner = SourcePlanner(configuration: configuration)
        let host = Self.agent("me", idc: "a", rack: "r1")
        let rackmates = (0..<4).map { Self.agent("rack\($0)", idc: "a", rack: "r1") }
        let far = (0..<10).map { Self.agent("far\($0)", idc: "b", rack: "r\($0)") }
        let chosen = planner.swarmPeers(for: host, among: rackmates + far, listings: [:], excluding: [], limit: 6)
        #expect(chosen.count == 6)
        #expect(Set(chosen.prefix(2)).isSubset(of: Set(rackmates.map { $0.peerURL! })), "the nearest first")
        #expect(chosen.dropFirst(2).allSatisfy { url in far.contains { $0.peerURL == url } }, "then the others, as sampled")
        let reported = rackmates[0].peerURL!
        let again = planner.swarmPeers(for: host, among: rackmates + far, listings: [:], excluding: [reported], limit: 6)
        #expect(!again.contains(reported))
    }
}
