import Wire

/// The hosts that can serve the active rollout's release to peers, grouped by rack and idc,
/// so the planner weighs a few dozen nearby candidates instead of the whole fleet: the engine
/// admits a host in time independent of the fleet's size. Members are hosts holding the
/// release whole, and in a swarm hosts fetching it too. Derived, never stored: rebuilt from
/// the fleet state when missing, then kept up as hosts join.
struct PeerIndex: Sendable {
    let rollout: String
    private(set) var members: Set<String> = []
    private var byRack: [String: [String]] = [:]
    private var byIDC: [String: [String]] = [:]
    private var all: [String] = []
    /// Turns on every call, so hosts asking in turn are shown different members first.
    private var turn = 0

    init(rollout: String) { self.rollout = rollout }

    mutating func insert(_ agent: AgentRecord) {
        guard agent.peerURL != nil, members.insert(agent.hostname).inserted else { return }
        all.append(agent.hostname)
        if let idc = agent.labels["idc"] {
            byIDC[idc, default: []].append(agent.hostname)
            if let rack = agent.labels["rack"] { byRack["\(idc)/\(rack)", default: []].append(agent.hostname) }
        }
    }

    /// Member names for `host`: up to `nearLimit` of its rack's, then its idc's (each group read
    /// from a point that moves on every call), then up to `farLimit` others drawn at random
    /// from every member, so a swarm's peer sets reach across racks.
    mutating func candidates(near host: AgentRecord, nearLimit: Int, farLimit: Int) -> [String] {
        turn &+= 1
        var picked: [String] = []
        var seen: Set<String> = [host.hostname]
        func take(from group: [String], upTo limit: Int) {
            guard !group.isEmpty else { return }
            let start = (turn &* 7919) % group.count
            var offset = 0
            while offset < group.count && picked.count < limit {
                let name = group[(start + offset) % group.count]
                if seen.insert(name).inserted { picked.append(name) }
                offset += 1
            }
        }
        if let idc = host.labels["idc"] {
            if let rack = host.labels["rack"], let group = byRack["\(idc)/\(rack)"] { take(from: group, upTo: nearLimit) }
            if picked.count < nearLimit, let group = byIDC[idc] { take(from: group, upTo: nearLimit) }
        }
        let wanted = picked.count + farLimit
        if all.count <= wanted + 1 {
            take(from: all, upTo: wanted)
        } else {
            var random = SplitMix64(seed: UInt64(truncatingIfNeeded: turn) &* 0x9E37_79B9)
            var draws = 0
            while picked.count < wanted && draws < 4 * wanted {
                draws += 1
                let name = all[random.below(all.count)]
                if seen.insert(name).inserted { picked.append(name) }
            }
        }
        return picked
    }
}
