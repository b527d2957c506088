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

    /// Up to `limit` member names for `host`: its rack's first, then its idc's, then any,
    /// each group read from a point that moves on every call.
    mutating func candidates(near host: AgentRecord, limit: Int) -> [String] {
        turn &+= 1
        var picked: [String] = []
        var seen: Set<String> = [host.hostname]
        func take(from group: [String]) {
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
            if let rack = host.labels["rack"], let group = byRack["\(idc)/\(rack)"] { take(from: group) }
            if picked.count < limit, let group = byIDC[idc] { take(from: group) }
        }
        if picked.count < limit { take(from: all) }
        return picked
    }
}
