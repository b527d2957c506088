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
    /// Peers qualify with verified pieces of the release, not only once they hold it whole.
    public var pieceRelay: Bool = false

    public init() {}

    /// Keys a config file leaves out keep their defaults.
    public init(from decoder: any Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hostDownlinkMbps = try container.decodeIfPresent(Double.self, forKey: .hostDownlinkMbps) ?? hostDownlinkMbps
        peerFanout = try container.decodeIfPresent(Int.self, forKey: .peerFanout) ?? peerFanout
        sourcesPerOrder = try container.decodeIfPresent(Int.self, forKey: .sourcesPerOrder) ?? sourcesPerOrder
        pieceRelay = try container.decodeIfPresent(Bool.self, forKey: .pieceRelay) ?? pieceRelay
    }
}

/// Picks each admitted host's sources, best first, so that no CDN carries more concurrent
/// downloads than its capacity share and no peer more than its fan-out; peers in the same rack,
/// then the same idc, come first; batches are spread over the CDNs. A pure function of what it
/// is given: the engine passes the current load, tests pass anything.
public struct SourcePlanner: Sendable {
    public enum Kind: String, Sendable { case cdn, peer }

    public let configuration: PlannerConfiguration

    public init(configuration: PlannerConfiguration = .init()) { self.configuration = configuration }

    /// Concurrent downloads a CDN may carry.
    public func slots(of source: CDNSource) -> Int {
        max(1, Int(source.capacityMbps / configuration.hostDownlinkMbps))
    }

    /// Whether a peer qualifies as a source of `name` `version`.
    public func serves(_ peer: AgentRecord, name: String, version: String) -> Bool {
        guard peer.peerURL != nil else { return false }
        return peer.held.contains { held in
            held.name == name && held.version == version
                && (held.complete || (configuration.pieceRelay && (held.verifiedPieces ?? 0) > 0))
        }
    }

    /// The ordered sources for `host`, or nil when every source that could be its primary is
    /// at its limit (the host waits for a slot). `load` counts downloads by primary source URL.
    public func plan(
        for host: AgentRecord, spec: RolloutSpec, batch: Int, peers: [AgentRecord], load: [String: Int]
    ) -> [String]? {
        if case .falcon(let wgetURL, _, _, _) = spec.locator { return [wgetURL] }
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

        // CDNs: start at a different one per batch, prefer the host's idc, then the least used.
        let count = spec.sources.count
        let rotated = (0..<count).map { spec.sources[($0 + batch) % count] }
        let cdns = rotated.enumerated().sorted { a, b in
            let (sa, sb) = (sameIDC(a.element, host), sameIDC(b.element, host))
            if sa != sb { return sa }
            let (ua, ub) = (usage(a.element, load), usage(b.element, load))
            if ua != ub { return ua < ub }
            return a.offset < b.offset
        }.map(\.element)
        var cdnPrimaries: [String] = [], cdnFallbacks: [String] = []
        for cdn in cdns {
            if load[cdn.url, default: 0] < slots(of: cdn) { cdnPrimaries.append(cdn.url) } else { cdnFallbacks.append(cdn.url) }
        }

        guard let primary = primaries.first ?? cdnPrimaries.first else { return nil }
        let limit = max(1, configuration.sourcesPerOrder)
        var ordered: [String] = []
        for url in [primary] + primaries + cdnPrimaries + fallbacks + cdnFallbacks where !ordered.contains(url) {
            ordered.append(url)
        }
        ordered = Array(ordered.prefix(limit))
        // Keep a CDN among the sources whenever there is one: a peer may die mid-body.
        if let cdn = (cdnPrimaries + cdnFallbacks).first, !ordered.contains(cdn), limit > 1 {
            if ordered.count == limit { ordered[limit - 1] = cdn } else { ordered.append(cdn) }
        }
        return ordered
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
