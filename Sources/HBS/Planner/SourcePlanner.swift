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
    /// CDN only as a fallback, so the origin sends each piece about once.
    public var cdnSeeds: Int = 2
    /// In a swarm: peers each order lists (re-sent with more while the host fetches).
    public var swarmPeers: Int = 16

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
    }
}

/// One host's sources, best first, and the origins it may use only as a last resort.
public struct SourcePlan: Sendable, Equatable {
    public var sources: [String]
    public var fallbacks: [String] = []
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
    /// the release or holding it (the engine's candidates); otherwise those holding it whole
    /// qualify.
    public func plan(
        for host: AgentRecord, spec: RolloutSpec, batch: Int, peers: [AgentRecord], load: [String: Int],
        listings: [String: Int] = [:]
    ) -> SourcePlan? {
        if case .falcon(let wgetURL, _, _, _) = spec.locator { return SourcePlan(sources: [wgetURL]) }
        if isSwarm(spec) { return planSwarm(for: host, spec: spec, batch: batch, peers: peers, load: load, listings: listings) }
        var primaries: [String] = []  // under their limit
        var fallbacks: [String] = []  // at their limit: listed after, never first

        if spec.peersMayServe {
            let candidates = peers.filter { $0.hostname != host.hostname && serves($0, name: spec.name, version: spec.version) }
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

        let cdns = rankedCDNs(for: host, batch: batch, spec: spec, load: load)
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

    /// A swarm member's order: a seed (while its CDN has fewer than `cdnSeeds` fetching from
    /// it first) gets the CDN first; every host gets up to `swarmPeers` peers, nearest and least
    /// listed first; hosts that are no seed get the CDNs as fallbacks. Nil (wait) only when the
    /// host can be no seed and no peer has room yet.
    private func planSwarm(
        for host: AgentRecord, spec: RolloutSpec, batch: Int, peers: [AgentRecord], load: [String: Int],
        listings: [String: Int]
    ) -> SourcePlan? {
        let chosen = swarmPeers(for: host, among: peers, listings: listings, excluding: [], limit: configuration.swarmPeers)
        let cdns = rankedCDNs(for: host, batch: batch, spec: spec, load: load)
        // Seeds only while no peer holds it whole: a later batch is fed by the earlier ones.
        let wholeHolders = Set(peers.filter { holdsWhole($0, spec) }.compactMap(\.peerURL))
        let seedCDN = chosen.contains(where: wholeHolders.contains) ? nil
            : cdns.first { load[$0.url, default: 0] < min(slots(of: $0), max(0, configuration.cdnSeeds)) }
        if let seedCDN {
            return SourcePlan(sources: [seedCDN.url] + chosen, fallbacks: cdns.map(\.url).filter { $0 != seedCDN.url })
        }
        guard !chosen.isEmpty else { return nil }
        return SourcePlan(sources: chosen, fallbacks: cdns.map(\.url))
    }

    /// Up to `limit` more swarm peers for `host`, not in `excluding` (already listed): nearest
    /// first, then the least listed, each under the swarm fan-out.
    public func swarmPeers(
        for host: AgentRecord, among peers: [AgentRecord], listings: [String: Int], excluding: Set<String>, limit: Int
    ) -> [String] {
        guard limit > 0 else { return [] }
        let candidates = peers.compactMap { peer -> (url: String, locality: Int, listed: Int, name: String)? in
            guard peer.hostname != host.hostname, let url = peer.peerURL, !excluding.contains(url) else { return nil }
            let listed = listings[url, default: 0]
            guard listed < swarmFanout else { return nil }
            return (url, locality(peer, host), listed, peer.hostname)
        }
        return candidates.sorted { a, b in
            if a.locality != b.locality { return a.locality > b.locality }
            if a.listed != b.listed { return a.listed < b.listed }
            return a.name < b.name
        }.prefix(limit).map(\.url)
    }

    /// CDNs for `host`: a different one first per batch, the host's idc first, then the least used.
    private func rankedCDNs(for host: AgentRecord, batch: Int, spec: RolloutSpec, load: [String: Int]) -> [CDNSource] {
        let count = spec.sources.count
        let rotated = (0..<count).map { spec.sources[($0 + batch) % count] }
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
