/// Whether any waiting host could be admitted now, where peers serve whole releases: HBS
/// orders a host only if a CDN has a free slot (fewer fetching from it first than capacity
/// over downlink) or some peer holding the release has a free one (fewer than `peerFanout`).
/// When neither has, every waiting host's beat gets no order, whichever peers the planner
/// would look at. Kept from the engine's events, as the planner's load is.
struct AdmissionGate {
    let fanout: Int
    /// Per node: hosts fetching with it as their first source.
    private var load: [Int32]
    /// Per node: a CDN's slots (0 for hosts).
    private var slots: [Int32]
    /// Per host: the node it fetches from first, -1 when not fetching.
    private var primary: [Int32]
    private var serves: [Bool]
    private(set) var freePeers = 0
    private(set) var freeCDNSlots = 0

    /// `cdnSlots`: the rollout's CDNs, by node, and the slots of each.
    init(hosts: Int, nodes: Int, cdnSlots: [(node: Int, slots: Int)], fanout: Int) {
        self.fanout = fanout
        load = [Int32](repeating: 0, count: nodes)
        slots = load
        primary = [Int32](repeating: -1, count: hosts)
        serves = [Bool](repeating: false, count: hosts)
        for (node, count) in cdnSlots {
            slots[node] = Int32(count)
            freeCDNSlots += count
        }
    }

    /// No waiting host can be admitted.
    var closed: Bool { freePeers == 0 && freeCDNSlots == 0 }

    /// What `node` adds to the free peers and free CDN slots.
    private func free(_ node: Int) -> (peers: Int, slots: Int) {
        if slots[node] > 0 { return (0, Int(max(0, slots[node] - load[node]))) }
        return (node < serves.count && serves[node] && Int(load[node]) < fanout ? 1 : 0, 0)
    }

    private mutating func change(_ node: Int, _ body: (inout AdmissionGate) -> Void) {
        let before = free(node)
        body(&self)
        let after = free(node)
        freePeers += after.peers - before.peers
        freeCDNSlots += after.slots - before.slots
    }

    /// The host fetches from `node` first now (nil: it does not fetch).
    mutating func fetching(_ host: Int, from node: Int?) {
        let old = Int(primary[host])
        let new = node ?? -1
        guard old != new else { return }
        if old >= 0 { change(old) { $0.load[old] -= 1 } }
        if new >= 0 { change(new) { $0.load[new] += 1 } }
        primary[host] = Int32(new)
    }

    /// The host holds the release whole (and so serves it) or not.
    mutating func serving(_ host: Int, _ whole: Bool) {
        guard serves[host] != whole else { return }
        change(host) { $0.serves[host] = whole }
    }
}
