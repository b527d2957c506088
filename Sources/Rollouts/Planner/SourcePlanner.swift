import Wire

/// Limits the planner keeps. Derived from the links: a CDN of capacity C serves C / downlink
/// downloads at once at full speed; a peer serves `peerFanout` at once.
public struct PlannerConfiguration: Codable, Sendable, Equatable {
    /// What one download takes, in Mbit/s: a host's downlink.
    public var hostDownlinkMbps: Double = 1000
    /// Downloads one peer serves at once (its uplink over a host's downlink, at least 1).
    public var peerFanout: Int = 4
    /// Sources per order: the primary, then fallbacks.
    public var sourcesPerOrder: Int = 3
    /// Peers qualify with verified pieces of the release, not only once they hold it whole:
    /// hosts fetching together form a swarm and trade pieces (see `SourcePlanner`).
    public var pieceRelay: Bool = false
    /// In a swarm: hosts per CDN that fetch from it first (seeds); every other host gets the
    /// CDN only as a fallback, so the origin sends each piece about once. Nil: as many as the
    /// CDN carries at full speed (its capacity over a host's downlink), each seed told its
    /// share of the pieces (super-seeding).
    public var cdnSeeds: Int?
    /// In a swarm: peers each order lists (re-sent with more while the host fetches). A piece
    /// crosses a swarm in about log2(N) hops when every host has a couple of dozen neighbours.
    public var swarmPeers: Int = 12
    /// In a swarm: how many of those are the nearest (same rack, then idc); the others are
    /// drawn at random from the whole swarm, so racks are no islands.
    public var nearPeers: Int = 4
    /// Hosts that must report a peer (dropped for misbehaving: lying, corrupt, too slow)
    /// before no order lists it any more; the reporting host itself never gets it again.
    public var quarantineReports: Int = 2

    public init() {}

    /// Keys a config file leaves out keep their defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hostDownlinkMbps = try container.decodeIfPresent(Double.self, forKey: .hostDownlinkMbps) ?? hostDownlinkMbps
        peerFanout = try container.decodeIfPresent(Int.self, forKey: .peerFanout) ?? peerFanout
        sourcesPerOrder = try container.decodeIfPresent(Int.self, forKey: .sourcesPerOrder) ?? sourcesPerOrder
        pieceRelay = try container.decodeIfPresent(Bool.self, forKey: .pieceRelay) ?? pieceRelay
        cdnSeeds = try container.decodeIfPresent(Int.self, forKey: .cdnSeeds) ?? cdnSeeds
        swarmPeers = try container.decodeIfPresent(Int.self, forKey: .swarmPeers) ?? swarmPeers
        nearPeers = try container.decodeIfPresent(Int.self, forKey: .nearPeers) ?? nearPeers
        quarantineReports = try container.decodeIfPresent(Int.self, forKey: .quarantineReports) ?? quarantineReports
    }
}

/// One host's sources, best first, the origins it may use only as a last resort, and (for a
/// CDN seed of a swarm) its share of the pieces.
public struct SourcePlan: Sendable, Equatable {
    public var sources: [String]
    public var fallbacks: [String] = []
    public var seedShare: SeedShare?
}

/// Picks each admitted host's sources, best first, so that no CDN carries more concurrent
/// downloads than its capacity share and no peer more than its fan-out; peers in the same rack,
/// then the same idc, come first; batches are spread over the CDNs. A pure function of what it
/// is given: the engine passes the current load, tests pass anything.
///
/// With `pieceRelay` the hosts fetching a release form a swarm: each order lists
/// `swarmPeers` peers (hosts fetching it too, or holding it), each peer listed by at most
/// twice that many; only `cdnSeeds` hosts per CDN fetch from it first, the others get it as a
/// fallback, and pieces spread host to host (Kumar and Ross's bound needs every host
/// uploading while it downloads, which a tree of whole-file relays cannot do).
public struct SourcePlanner: Sendable {
    public enum Kind: String, Sendable { case cdn, peer }

    public let configuration: PlannerConfiguration

    public init(configuration: PlannerConfiguration = .init()) { self.configuration = configuration }

    /// Concurrent downloads a CDN may carry.
    public func slots(of source: CDNSource) -> Int {
        max(1, Int(source.capacityMbps / configuration.hostDownlinkMbps))
    }

    private func holdsWhole(_ peer: AgentRecord, _ spec: RolloutSpec) -> Bool {
        peer.held.contains { $0.name == spec.name && $0.version == spec.version && $0.complete }
    }

    /// Whether a peer qualifies as a source of `name` `version`.
    public func serves(_ peer: AgentRecord, name: String, version: String) -> Bool {
        guard peer.peerURL != nil else { return false }
        return peer.held.contains { held in
            held.name == name && held.version == version
                && (held.complete || (configuration.pieceRelay && (held.verifiedPieces ?? 0) > 0))
        }
    }

    /// Whether this rollout's hosts form a swarm.
    public func isSwarm(_ spec: RolloutSpec) -> Bool { configuration.pieceRelay && spec.peersMayServe && !spec.isFalcon }

    /// The most orders that may list one peer of a swarm.
    var swarmFanout: Int { max(1, 2 * configuration.swarmPeers) }

    /// The ordered sources for `host`, or nil when every source that could be its primary is
    /// at its limit (the host waits for a slot). `load` counts downloads by primary source URL,
    /// `listings` by every source their orders list. In a swarm, `peers` are hosts fetching
    /// the release or holding it (the engine's candidates: the nearest first, then a random
    /// sample); otherwise those holding it whole qualify. `excluded` sources (reported as
    /// misbehaving) are never listed.
    public func plan(
        for host: AgentRecord, spec: RolloutSpec, batch: Int, peers: [AgentRecord], load: [String: Int],
        listings: [String: Int] = [:], excluded: Set<String> = []
    ) -> SourcePlan? {
        if case .falcon(let wgetURL, _, _, _) = spec.locator { return SourcePlan(sources: [wgetURL]) }
        if isSwarm(spec) {
            return planSwarm(for: host, spec: spec, batch: batch, peers: peers, load: load, listings: listings, excluded: excluded)
        }
        var primaries: [String] = []  // under their limit
        var fallbacks: [String] = []  // at their limit: listed after, never first

        if spec.peersMayServe {
            let candidates = peers.filter {
                $0.hostname != host.hostname && serves($0, name: spec.name, version: spec.version) && !excluded.contains($0.peerURL ?? "")
            }
                .sorted { a, b in
                    let (la, lb) = (locality(a, host), locality(b, host))
                    if la != lb { return la > lb }
                    let (ua, ub) = (load[a.peerURL!, default: 0], load[b.peerURL!, default: 0])
                    if ua != ub { return ua < ub }
                    return a.hostname < b.hostname
                }
            for peer in candidates {
                let url = peer.peerURL!
                if load[url, default: 0] < configuration.peerFanout { primaries.append(url) } else { fallbacks.append(url) }
            }
        }

        let cdns = rankedCDNs(for: host, batch: batch, spec: spec, load: load, excluded: excluded)
        var cdnPrimaries: [String] = [], cdnFallbacks: [String] = []
        for cdn in cdns {
            if load[cdn.url, default: 0] < slots(of: cdn) { cdnPrimaries.append(cdn.url) } else { cdnFallbacks.append(cdn.url) }
        }

        guard let primary = primaries.first ?? cdnPrimaries.first else { return nil }
        return SourcePlan(sources: ordered(primary: primary, primaries + cdnPrimaries + fallbacks + cdnFallbacks,
                                           cdn: (cdnPrimaries + cdnFallbacks).first))
    }

    /// `primary` first, then the rest in order without repeats, at most `sourcesPerOrder`, and
    /// a CDN kept among them whenever there is one: a peer may die mid-body.
    private func ordered(primary: String, _ rest: [String], cdn: String?) -> [String] {
        let limit = max(1, configuration.sourcesPerOrder)
        var ordered: [String] = []
        for url in [primary] + rest where !ordered.contains(url) {
            ordered.append(url)
        }
        ordered = Array(ordered.prefix(limit))
        if let cdn, !ordered.contains(cdn), limit > 1 {
            if ordered.count == limit { ordered[limit - 1] = cdn } else { ordered.append(cdn) }
        }
        return ordered
    }

    /// Hosts that fetch from `cdn` first at once: the configured number, or as many as it
    /// carries at full speed.
    func seeds(of cdn: CDNSource) -> Int { min(slots(of: cdn), configuration.cdnSeeds ?? slots(of: cdn)) }

    /// A swarm member's order: a seed (while its CDN has fewer seeds fetching from it first
    /// than `seeds(of:)`) gets the CDN first and its share of the pieces; every host gets up
    /// to `swarmPeers` peers; hosts that are no seed get the CDNs as fallbacks. Nil (wait) only
    /// when the host can be no seed and no peer has room yet.
    private func planSwarm(
        for host: AgentRecord, spec: RolloutSpec, batch: Int, peers: [AgentRecord], load: [String: Int],
        listings: [String: Int], excluded: Set<String>
    ) -> SourcePlan? {
        let chosen = swarmPeers(for: host, among: peers, listings: listings, excluding: excluded, limit: configuration.swarmPeers)
        let cdns = rankedCDNs(for: host, batch: batch, spec: spec, load: load, excluded: excluded)
        // Seeds only while no peer holds it whole: a later batch is fed by the earlier ones.
        let wholeHolders = Set(peers.filter { holdsWhole($0, spec) }.compactMap(\.peerURL))
        let seedCDN = chosen.contains(where: wholeHolders.contains) ? nil
            : cdns.first { load[$0.url, default: 0] < seeds(of: $0) }
        if let seedCDN {
            // Seed i of all the CDNs' seeds: its share of the pieces is every (count)th from i.
            let offset = spec.sources.prefix { $0.url != seedCDN.url }.reduce(0) { $0 + seeds(of: $1) }
            let count = spec.sources.reduce(0) { $0 + seeds(of: $1) }
            return SourcePlan(
                sources: [seedCDN.url] + chosen, fallbacks: cdns.map(\.url).filter { $0 != seedCDN.url },
                seedShare: SeedShare(index: offset + load[seedCDN.url, default: 0], count: count))
        }
        guard !chosen.isEmpty else { return nil }
        return SourcePlan(sources: chosen, fallbacks: cdns.map(\.url))
    }

    /// Up to `limit` more swarm peers for `host`, not in `excluding` (listed already, or
    /// reported): first the nearest (same rack, then idc; the least listed first) up to
    /// `nearPeers`, then the others in the order given (the engine's random sample), hosts in
    /// other racks and idcs first, each under the swarm fan-out.
    public func swarmPeers(
        for host: AgentRecord, among peers: [AgentRecord], listings: [String: Int], excluding: Set<String>, limit: Int
    ) -> [String] {
        guard limit > 0 else { return [] }
        let candidates = peers.enumerated().compactMap { position, peer -> (url: String, locality: Int, listed: Int, position: Int)? in
            guard peer.hostname != host.hostname, let url = peer.peerURL, !excluding.contains(url) else { return nil }
            let listed = listings[url, default: 0]
            guard listed < swarmFanout else { return nil }
            return (url, locality(peer, host), listed, position)
        }
        let near = candidates.filter { $0.locality > 0 }.sorted { a, b in
            if a.locality != b.locality { return a.locality > b.locality }
            if a.listed != b.listed { return a.listed < b.listed }
            return a.position < b.position
        }.prefix(min(limit, configuration.nearPeers)).map(\.url)
        let taken = Set(near)
        // The rest from the sample: hosts elsewhere before more neighbours, so racks are no islands.
        let far = candidates.filter { !taken.contains($0.url) }
            .sorted { ($0.locality > 0 ? 1 : 0, $0.position) < ($1.locality > 0 ? 1 : 0, $1.position) }
            .prefix(limit - near.count).map(\.url)
        return near + far
    }

    /// CDNs for `host`: a different one first per batch, the host's idc first, then the least
    /// used; none it reported.
    private func rankedCDNs(for host: AgentRecord, batch: Int, spec: RolloutSpec, load: [String: Int], excluded: Set<String> = []) -> [CDNSource] {
        let count = spec.sources.count
        let rotated = (0..<count).map { spec.sources[($0 + batch) % count] }.filter { !excluded.contains($0.url) }
        return rotated.enumerated().sorted { a, b in
            let (sa, sb) = (sameIDC(a.element, host), sameIDC(b.element, host))
            if sa != sb { return sa }
            let (ua, ub) = (usage(a.element, load), usage(b.element, load))
            if ua != ub { return ua < ub }
            return a.offset < b.offset
        }.map(\.element)
    }

    /// What kind of source a URL of this rollout is.
    public func kind(of url: String, spec: RolloutSpec) -> Kind {
        spec.sources.contains { $0.url == url } ? .cdn : .peer
    }

    /// 2: same idc and rack, 1: same idc, 0: elsewhere.
    private func locality(_ peer: AgentRecord, _ host: AgentRecord) -> Int {
        guard let idc = host.labels["idc"], peer.labels["idc"] == idc else { return 0 }
        if let rack = host.labels["rack"], peer.labels["rack"] == rack { return 2 }
        return 1
    }

    private func sameIDC(_ cdn: CDNSource, _ host: AgentRecord) -> Bool {
        guard let idc = cdn.labels["idc"] else { return false }
        return host.labels["idc"] == idc
    }

    private func usage(_ cdn: CDNSource, _ load: [String: Int]) -> Double {
        Double(load[cdn.url, default: 0]) / Double(slots(of: cdn))
    }
}
