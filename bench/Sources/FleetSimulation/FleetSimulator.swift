import HBS
import Wire

/// One rollout of a virtual fleet through the real `RolloutEngine` (and through it the real
/// `SourcePlanner`), in virtual time.
///
/// Agents register with one beat, the rollout is created at t = 0, every waiting agent beats
/// at once (the long-poll wake-up), then each beats every `fastBeatSeconds` from a random phase,
/// as HBS's replies ask. Orders start downloads (`PieceSwarm` picks the pieces), transfers share
/// the links max-min fair (`NetworkModel`), a verified release is installed in
/// `installSeconds`, and the new version's first beat has the engine mark the host done. The
/// engine sweeps every virtual second and gets `floor(t)` as its time.
///
/// Time advances in steps: to the next transfer's end or the next event, but at least
/// `stepSeconds` while transfers run, so that rates are recomputed at most that often.
public struct FleetSimulator {
    public let parameters: SimulationParameters
    public let mode: SimulationMode
    let topology: FleetTopology
    var engine: RolloutEngine
    var network: NetworkModel
    var swarm: PieceSwarm
    var events = EventQueue()
    var elision: BeatElision
    var agents: [VirtualAgent]
    var random: SimulationRandom
    /// Unix time of the rollout's creation, as the engine sees it.
    let epoch: Int64 = 1_800_000_000
    var rolloutID = ""

    // What the run did.
    var firstOrder: Double?
    var lastFirstOrder: Double?
    var lastVerified: Double?
    var confirmTimes: [Double] = []
    var settledHosts = 0
    var failedHosts = 0
    var failures = 0
    var orders = 0
    var resentOrders = 0
    var beats = 0
    var cost = EngineCost()
    var originBytes = 0.0
    var peerBytes = 0.0
    var pieceTransfers = 0
    var verifiedPieces = 0
    var orderedHosts = 0
    var verifiedHosts = 0
    var steps = 0

    // Hosts whose free slots may have something to fetch now.
    private var interested: [Int32] = []
    private var isInterested: [Bool]
    private var pollPending: [Bool]

    public init(parameters: SimulationParameters, mode: SimulationMode) {
        self.parameters = parameters
        self.mode = mode
        let hosts = parameters.hosts
        topology = FleetTopology(hosts: hosts, idcs: parameters.idcs, racksPerIDC: parameters.racksPerIDC, cdns: parameters.cdns)
        engine = RolloutEngine(configuration: parameters.engineConfiguration(mode))
        network = NetworkModel(
            uplinks: [Double](repeating: parameters.hostUpload, count: hosts) + [Double](repeating: parameters.cdnUpload, count: parameters.cdns),
            downlinks: [Double](repeating: parameters.hostDownload, count: hosts))
        swarm = PieceSwarm(hostCount: hosts, pieceCount: parameters.pieceCount, policy: parameters.swarm, seed: parameters.seed &+ 1)
        elision = BeatElision(hosts: hosts, pendingToo: !mode.peersServe)
        random = SimulationRandom(seed: parameters.seed)
        agents = [VirtualAgent](repeating: VirtualAgent(beatInterval: parameters.fastBeatSeconds), count: hosts)
        isInterested = [Bool](repeating: false, count: hosts)
        pollPending = isInterested
        // The same hosts are bad in every mode of one seed.
        var badness = SimulationRandom(seed: parameters.seed &+ 2)
        for host in 0..<hosts where badness.unit() < parameters.failureRate { agents[host].bad = true }
    }

    /// Where a run stands, for `trace`.
    public struct TraceSample: Sendable {
        public var time: Double
        public var transfers: Int
        /// Pieces verified over all hosts, and hosts with an order, with the release, confirmed.
        public var verifiedPieces: Int
        public var ordered: Int
        public var verified: Int
        public var confirmed: Int
        public var originBytes: Double
        public var peerBytes: Double
    }

    /// Runs the rollout until every host is done or given up on, or the time limit. `trace`
    /// sees a sample every `traceSeconds` of virtual time.
    public mutating func run(trace: ((TraceSample) -> Void)? = nil) throws(EngineError) -> SimulationResult {
        var nextTrace = 0.0
        let wallStart = ContinuousClock.now
        let hosts = parameters.hosts
        // Every agent is known to HBS before the rollout: one beat each, a second before.
        for host in 0..<hosts {
            _ = engine.beat(request(for: host), now: epoch - 1)
            agents[host].lastEngineBeat = -1
        }
        _ = engine.takeOutbox()

        let started = ContinuousClock.now
        let rollout = try engine.create(parameters.spec(mode, topology: topology), now: epoch)
        cost.create.add((ContinuousClock.now - started).seconds)
        rolloutID = rollout.id
        followOutbox(at: 0)
        // Long-poll: every waiting beat is answered at once, in no particular order.
        var wakeOrder = Array(0..<hosts)
        wakeOrder.shuffle(using: &random)
        for host in wakeOrder { events.schedule(.beat, host: host, at: 0, generation: 0) }
        events.schedule(.sweep, host: 0, at: 1)

        var now = 0.0
        var nextCompletion = Double.infinity
        var completions: [NetworkModel.Completion] = []
        var picks: [PieceSwarm.Pick] = []
        let limit = parameters.timeLimitSeconds
        while settledHosts < hosts && now < limit {
            let next = min(events.nextTime ?? .infinity, nextCompletion)
            guard next.isFinite else { break }  // nothing will ever happen again
            let end = min(limit, max(next, now + parameters.stepSeconds))
            completions.removeAll(keepingCapacity: true)
            network.advance(from: now, to: end, completed: &completions)
            for completion in completions { completed(completion) }
            now = end
            while let event = events.pop(dueBy: end) { handle(event) }
            picks.removeAll(keepingCapacity: true)
            for host in interested {
                let index = Int(host)
                isInterested[index] = false
                let first = picks.count
                swarm.fill(index, now: now, picks: &picks)
                for pick in picks[first...] {
                    network.start(from: Int(pick.source), to: index, piece: Int(pick.piece),
                                  bytes: Double(parameters.pieceSize(Int(pick.piece))))
                }
            }
            interested.removeAll(keepingCapacity: true)
            network.reallocate()
            nextCompletion = network.nextCompletion(after: now)
            steps += 1
            if let trace, now >= nextTrace {
                nextTrace = now + parameters.traceSeconds
                trace(TraceSample(
                    time: now, transfers: network.transfers, verifiedPieces: verifiedPieces, ordered: orderedHosts,
                    verified: verifiedHosts, confirmed: confirmTimes.count, originBytes: originBytes, peerBytes: peerBytes))
            }
        }
        return SimulationResult(
            mode: mode, hosts: hosts, confirmTimes: confirmTimes.sorted(), failedHosts: failedHosts, failures: failures,
            settled: settledHosts == hosts, originBytes: originBytes, peerBytes: peerBytes, firstOrder: firstOrder,
            lastFirstOrder: lastFirstOrder, lastVerified: lastVerified, orders: orders, resentOrders: resentOrders,
            beats: beats, engine: cost, pieceTransfers: pieceTransfers, peakTransfers: network.peakTransfers,
            reallocations: network.reallocations, steps: steps, virtualSeconds: now,
            wallSeconds: (ContinuousClock.now - wallStart).seconds)
    }

    private mutating func completed(_ completion: NetworkModel.Completion) {
        let host = Int(completion.receiver), source = Int(completion.source), piece = Int(completion.piece)
        let bytes = parameters.pieceSize(piece)
        if topology.isCDN(source) { originBytes += Double(bytes) } else { peerBytes += Double(bytes) }
        pieceTransfers += 1
        verifiedPieces += 1
        let had = swarm.haveCount[host]
        swarm.verified(piece: piece, at: host, from: source, bytes: bytes)
        markInterested(host)
        if swarm.haveCount[host] > had { agents[host].verifiedBytes += bytes }
        if agents[host].phase == .downloading && swarm.holdsAll(host) { downloadFinished(host, at: completion.time) }
    }

    mutating func markInterested(_ host: Int) {
        guard !isInterested[host] else { return }
        isInterested[host] = true
        interested.append(Int32(host))
    }

    /// The host's next map poll, `mapRefresh` after `now`, unless one is due already.
    mutating func schedulePoll(_ host: Int, at now: Double) {
        guard !pollPending[host], swarm.polls(host) else { return }
        pollPending[host] = true
        events.schedule(.mapPoll, host: host, at: now + parameters.swarm.mapRefresh)
    }

    private mutating func handle(_ event: EventQueue.Event) {
        let host = Int(event.host)
        switch event.kind {
        case .beat:
            guard event.generation == agents[host].beatGeneration else { return }  // rescheduled since
            beat(host, at: event.time)
        case .restart:
            // The last beat of the old version, then the new one starts and beats at once.
            agents[host].phase = .restarting
            sendBeat(host, at: event.time)
            agents[host].phase = .upgraded
            beat(host, at: event.time)
        case .installFailed:
            agents[host].phase = .failed
            beat(host, at: event.time)
        case .sweep:
            let started = ContinuousClock.now
            engine.sweep(now: epoch + Int64(event.time.rounded(.down)))
            cost.sweeps.add((ContinuousClock.now - started).seconds)
            followOutbox(at: event.time)
            events.schedule(.sweep, host: 0, at: event.time + 1)
        case .fallbackDue:
            markInterested(host)
        case .mapPoll:
            pollPending[host] = false
            if swarm.poll(host) { markInterested(host) }
            schedulePoll(host, at: event.time)
        }
    }

    /// A beat, to the engine or (when its answer cannot differ) not; the next one scheduled.
    private mutating func beat(_ host: Int, at now: Double) {
        beats += 1
        let agent = agents[host]
        let quiet = agent.phase == .waiting || agent.phase == .failed || agent.phase == .upgraded
        if parameters.elideBeats && quiet && now - agent.lastEngineBeat < parameters.refreshSeconds && elision.mayElide(host) {
            cost.elidedBeats += 1
        } else if let reply = sendBeat(host, at: now) {
            agents[host].beatInterval = reply.nextBeatSeconds
        }
        var interval = agents[host].beatInterval
        if !agents[host].phased {
            agents[host].phased = true
            interval *= 1 - random.unit()  // (0, 1] of the interval
        }
        agents[host].beatGeneration &+= 1
        events.schedule(.beat, host: host, at: now + interval, generation: agents[host].beatGeneration)
    }

    /// Sends the host's beat to the engine and carries out what it answers.
    @discardableResult
    private mutating func sendBeat(_ host: Int, at now: Double) -> HeartbeatReply? {
        let beat = request(for: host)
        let waiting = agents[host].phase == .waiting || agents[host].phase == .failed
        let started = ContinuousClock.now
        let reply = engine.beat(beat, now: epoch + Int64(now.rounded(.down)))
        let seconds = (ContinuousClock.now - started).seconds
        agents[host].lastEngineBeat = now
        followOutbox(at: now)
        if let order = reply.order {
            cost.orderBeats.add(seconds)
            orders += 1
            take(order, host: host, at: now)
        } else if waiting {
            cost.waitingBeats.add(seconds)
            elision.noOrder(for: host)
        } else {
            cost.otherBeats.add(seconds)
        }
        return reply
    }

    /// Reads what the engine changed: hosts done or given up on, and what beat elision follows.
    private mutating func followOutbox(at now: Double) {
        for event in engine.takeOutbox() {
            switch event {
            case .hostUpdated(_, let name, let progress):
                guard let host = topology.host(named: name) else { continue }
                elision.note(event, host: host)
                if progress.phase == .done && !agents[host].settled {
                    agents[host].settled = true
                    agents[host].confirmedAt = now
                    confirmTimes.append(now)
                    settledHosts += 1
                } else if progress.phase == .failed {
                    failures += 1
                    if progress.retryAt == nil && !agents[host].settled {
                        agents[host].settled = true
                        failedHosts += 1
                        settledHosts += 1
                    }
                }
            case .agentSeen(let agent):
                elision.note(event, host: topology.host(named: agent.hostname))
            case .rolloutCreated, .rolloutPhase:
                elision.note(event, host: nil, index: topology.host(named:))
            }
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
