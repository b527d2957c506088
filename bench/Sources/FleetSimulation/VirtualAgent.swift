import Rollouts
import Wire

/// One simulated host's agent: where it is in its upgrade, when it beats, and what it tells
/// HBS.
struct VirtualAgent {
    enum Phase: UInt8 {
        /// Runs the old version, no order (or none left to carry out).
        case waiting
        case downloading
        /// Holds the verified release: staging, self-testing, switching.
        case installing
        /// Switched; its last beat before the new version starts.
        case restarting
        /// Runs the new version.
        case upgraded
        /// Its last attempt failed; says so on every beat until the next order.
        case failed
    }

    var phase = Phase.waiting
    /// Its upgrade fails on every attempt (the self-test of the new binary fails).
    var bad = false
    /// It beats at `anchor + k * interval`; its queued beat is at `scheduledAt`, stamped with
    /// `beatGeneration` (a queued beat of an older generation is stale).
    var anchor = 0.0
    var interval = 1.0
    var scheduledAt = Double.infinity
    var beatGeneration: UInt32 = 0
    /// The last beat on its grid that was accounted for (sent or skipped).
    var lastGridBeat = 0.0
    var lastEngineBeat = -Double.infinity
    /// What its last beat to the engine said (`reportKey`).
    var reportedKey: UInt8 = 0
    var verifiedBytes: Int64 = 0
    var firstOrderAt = -1.0
    var verifiedAt = -1.0
    var confirmedAt = -1.0
    var settled = false

    /// Its next beat strictly after `time`.
    func nextBeat(after time: Double) -> Double {
        let steps = ((time - anchor) / interval).rounded(.down) + 1
        let next = anchor + max(0, steps) * interval
        return next > time ? next : next + interval
    }
}

extension FleetSimulator {
    /// What a beat of `host` says that the engine acts on: its state, its version, and what
    /// it can serve (nothing, pieces, the whole release). Progress counts alone are no news.
    func reportKey(_ host: Int) -> UInt8 {
        let pieces = swarm.haveCount(host)
        let serving: UInt8 = pieces == 0 ? 0 : pieces == swarm.pieceCount ? 2 : 1
        return agents[host].phase.rawValue << 2 | serving
    }

    /// The beat the real agent would send now: identity, labels, state, progress, bytes by
    /// source, the release it holds (whole or the pieces verified so far), its peer port.
    func request(for host: Int) -> HeartbeatRequest {
        let agent = agents[host]
        let pieces = swarm.haveCount(host)
        var held: [HeldRelease] = []
        if pieces > 0 {
            let complete = pieces == swarm.pieceCount
            held = [HeldRelease(name: SimulatedRelease.name, version: SimulatedRelease.newVersion, complete: complete,
                                verifiedPieces: complete ? nil : pieces)]
        }
        var request = HeartbeatRequest(
            hostname: topology.hostnames[host], ip: topology.ips[host],
            version: agent.phase == .upgraded ? SimulatedRelease.newVersion : SimulatedRelease.oldVersion,
            labels: topology.labels[host], state: .idle, held: held, peerPort: FleetTopology.peerPort)
        switch agent.phase {
        case .waiting, .upgraded:
            break
        case .downloading, .installing, .restarting:
            request.state = agent.phase == .downloading ? .downloading : agent.phase == .installing ? .installing : .restarting
            request.rolloutId = rolloutID
            request.progressBytes = agent.verifiedBytes
            var bySource: [String: Int64] = [:]
            for (node, bytes) in swarm.sourceBytes(host) { bySource[topology.urls[node]] = bytes }
            request.downloadedFrom = bySource
        case .failed:
            request.state = .failed
            request.rolloutId = rolloutID
            request.error = "simulated: the new binary failed its self-test"
        }
        return request
    }

    /// Peers (not CDNs, not fallbacks) the host's orders listed.
    func listedPeers(_ host: Int) -> Int { swarm.listedPeers(host) }

    /// Carries out an order: a new attempt starts a download from every source at once; an
    /// order re-sent during the download brings more sources in.
    mutating func take(_ order: UpgradeOrder, host: Int, at now: Double) {
        switch agents[host].phase {
        case .waiting, .failed:
            if agents[host].firstOrderAt < 0 {
                orderedHosts += 1
                agents[host].firstOrderAt = now
                firstOrder = min(firstOrder ?? now, now)
                lastFirstOrder = max(lastFirstOrder ?? now, now)
            }
            agents[host].phase = .downloading
            // A new attempt: whatever it says next is news, even a state it reported before.
            agents[host].reportedKey = .max
            swarm.begin(host, now: now, share: order.seedShare)
            addSources(of: order, to: host, at: now)
            if swarm.holdsAll(host) {
                downloadFinished(host, at: now)
            } else {
                markInterested(host)
            }
        case .downloading:
            resentOrders += 1
            if addSources(of: order, to: host, at: now) { markInterested(host) }
        case .installing, .restarting, .upgraded:
            break
        }
    }

    /// The order's sources join the host's download; each one's availability (a peer's
    /// snapshot, a CDN's 404) arrives one latency later. True when some source is new.
    @discardableResult
    private mutating func addSources(of order: UpgradeOrder, to host: Int, at now: Double) -> Bool {
        var added = false
        for (urls, fallback) in [(order.sources, false), (order.fallbackSources ?? [], true)] {
            for url in urls {
                guard let node = topology.node(of: url) else { continue }
                if let index = swarm.add(source: node, url: url, isFallback: fallback, to: host) {
                    events.schedule(.learn, host: host, at: now + parameters.availabilityLatency, generation: UInt32(index))
                    added = true
                    // Its watch request names this host's range server: the peer may fetch from it too.
                    if let back = swarm.announce(peer: host, url: topology.urls[host], to: node) {
                        events.schedule(.learn, host: node, at: now + 2 * parameters.availabilityLatency, generation: UInt32(back))
                    }
                } else if fallback {
                    added = true
                }
            }
        }
        return added
    }

    /// Every piece verified: install, then restart into the new version (or fail, for a bad
    /// host). Its next beat says "installing".
    mutating func downloadFinished(_ host: Int, at now: Double) {
        agents[host].phase = .installing
        if agents[host].verifiedAt < 0 {
            verifiedHosts += 1
            agents[host].verifiedAt = now
            lastVerified = max(lastVerified ?? now, now)
        }
        events.schedule(agents[host].bad ? .installFailed : .restart, host: host, at: now + parameters.installSeconds)
        wake(host, at: now)
    }
}
