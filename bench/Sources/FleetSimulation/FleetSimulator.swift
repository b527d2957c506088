import Rollouts
import Swarm
import Wire

/// One rollout of a virtual fleet through the real `RolloutEngine` (and through it the real
/// `SourcePlanner`), in virtual time.
///
/// Agents register with one beat, the rollout is created at t = 0, every waiting agent beats
/// at once (the long-poll wake-up), then each beats every `fastBeatSeconds` from a random phase,
/// as HBS's replies ask (`BeatScheduling`). Orders start downloads (`PieceSwarm`: the agent's
/// own `PieceScheduler` picks the pieces), transfers share the links max-min fair
/// (`NetworkModel`), a verified release is
/// installed in `installSeconds`, and the new version's first beat has the engine mark the host
/// done. The engine gets `floor(t)` as its time.
///
/// Time advances in steps: to the next transfer's end or the next event, but at least
/// `stepSeconds` while transfers run, so that rates are recomputed at most that often.
///
/// The engine sweeps every `sweepSeconds` (1: every second, as HBS does), and at once when a
/// failed host's retry or an upgrading host's deadline is due: the only moments a sweep can
/// change anything here, since simulated agents never fall silent.
public struct FleetSimulator {
    public let parameters: SimulationParameters
    public let mode: SimulationMode
    let topology: FleetTopology
    var engine: RolloutEngine
    var network: NetworkModel
    var swarm: PieceSwarm
    var events = EventQueue()
    var elision: BeatElision
    var parking: PhaseParking
    var agents: [VirtualAgent]
    var random: SplitMix64
    /// Unix time of the rollout's creation, as the engine sees it.
    let epoch: Int64 = 1_800_000_000
    var rolloutID = ""
    /// The rollout's lease: an upgrading host silent this long is failed by the sweep.
    var leaseSeconds: Int64 = 60
    /// Per batch, the parked host woken to beat next; and back.
    var successors: [Int: Int] = [:]
    var successorBatch: [Int: Int] = [:]
    var wokenGeneration: UInt64 = 0
    private var lastSweep: Int64 = -1

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
    var cancelledTransfers = 0
    var verifiedPieces = 0
    var orderedHosts = 0
    var verifiedHosts = 0
    var steps = 0

    // Hosts whose free slots may have something to fetch now.
    private var interested: [Int32] = []
    private var isInterested: [Bool]
    /// The earliest `wake` event queued per host (a later one is not queued again).
    private var wakeAt: [Double]
    private var completions: [NetworkModel.Completion] = []
    private var actions: [PieceSwarm.Action] = []
    private var news: [Int32] = []

    public init(parameters: SimulationParameters, mode: SimulationMode) {
        self.parameters = parameters
        self.mode = mode
        let hosts = parameters.hosts
        topology = FleetTopology(hosts: hosts, idcs: parameters.idcs, racksPerIDC: parameters.racksPerIDC, cdns: parameters.cdnNodes)
        engine = RolloutEngine(configuration: parameters.engineConfiguration(mode))
        network = NetworkModel(
            uplinks: [Double](repeating: parameters.hostUpload, count: hosts) + [Double](repeating: parameters.cdnUpload, count: parameters.cdnNodes),
            downlinks: [Double](repeating: parameters.hostDownload, count: hosts))
        let sizes = parameters
        swarm = PieceSwarm(
            hostCount: hosts, nodeCount: hosts + parameters.cdnNodes, pieceCount: parameters.pieceCount, policy: parameters.swarm,
            pacedDownload: parameters.pacedDownload, uplink: parameters.hostUpload, seed: parameters.seed &+ 1,
            pieceBytes: { sizes.pieceSize($0) })
        elision = BeatElision(hosts: hosts, pendingToo: !mode.peersServe)
        if mode == .peerFile {
            // Whole-file peers: the planner's slots, as it counts them.
            let configuration = parameters.engineConfiguration(mode)
            let planner = SourcePlanner(configuration: configuration.planner)
            let cdns = parameters.spec(mode, topology: topology).sources.enumerated().map { (node: hosts + $0.offset, slots: planner.slots(of: $0.element)) }
            let topology = topology
            elision = BeatElision(
                hosts: hosts, pendingToo: false,
                gate: AdmissionGate(hosts: hosts, nodes: topology.nodeCount, cdnSlots: cdns, fanout: configuration.planner.peerFanout),
                release: (SimulatedRelease.name, SimulatedRelease.newVersion), node: { topology.node(of: $0) })
        }
        parking = PhaseParking(hosts: hosts, interval: parameters.fastBeatSeconds)
        random = SplitMix64(seed: parameters.seed)
        agents = [VirtualAgent](repeating: VirtualAgent(interval: parameters.fastBeatSeconds), count: hosts)
        isInterested = [Bool](repeating: false, count: hosts)
        wakeAt = [Double](repeating: .infinity, count: hosts)
        // The same hosts are bad in every mode of one seed.
        var badness = SplitMix64(seed: parameters.seed &+ 2)
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
        let wallStart = ContinuousClock.now
        let hosts = parameters.hosts
        // Every agent is known to HBS before the rollout: one beat each, a second before.
        for host in 0..<hosts {
            _ = engine.beat(request(for: host), now: epoch - 1)
            agents[host].lastEngineBeat = -1
            agents[host].reportedKey = reportKey(host)
        }
        _ = engine.takeOutbox()

        let started = ContinuousClock.now
        let rollout = try engine.create(parameters.spec(mode, topology: topology), now: epoch)
        cost.create.add((ContinuousClock.now - started).seconds)
        rolloutID = rollout.id
        leaseSeconds = rollout.spec.leaseSeconds
        followOutbox(at: 0)
        // Long-poll: every waiting beat is answered, the first batch first (as HBS wakes them),
        // each in no particular order; at once, or as fast as HBS's instances answer.
        let first = engine.state.rollouts[rollout.id]?.admissibleNow ?? []
        var early = topology.hostnames.indices.filter { first.contains(topology.hostnames[$0]) }
        var late = topology.hostnames.indices.filter { !first.contains(topology.hostnames[$0]) }
        early.shuffle(using: &random)
        late.shuffle(using: &random)
        let wakeOrder = early + late
        let wakeTimes = parameters.hbs?.answerTimes(order: wakeOrder, targets: rollout.hosts.count)
        for host in wakeOrder { events.schedule(.wakeUp, host: host, at: wakeTimes?[host] ?? 0) }
        events.schedule(.sweep, host: 0, at: 1)

        var now = 0.0
        var nextCompletion = Double.infinity
        var nextTrace = 0.0
        let limit = parameters.timeLimitSeconds
        while settledHosts < hosts && now < limit {
            let next = min(events.nextTime ?? .infinity, nextCompletion)
            guard next.isFinite else { break }  // nothing will ever happen again
            now = min(limit, max(next, now + parameters.stepSeconds))
            var moved = false
            if now >= nextCompletion {
                advanceNetwork(to: now)
                moved = true
            }
            while let event = events.pop(dueBy: now) { handle(event) }
            if !interested.isEmpty {
                if network.clock < now {
                    advanceNetwork(to: now)
                    moved = true
                }
                var index = 0
                while index < interested.count {  // a rounding completion may add more
                    let host = Int(interested[index])
                    index += 1
                    isInterested[host] = false
                    if let wake = swarm.fill(host, now: now, actions: &actions) { scheduleWake(host, at: wake) }
                    perform()
                }
                interested.removeAll(keepingCapacity: true)
            }
            if network.changed {
                if network.clock < now { advanceNetwork(to: now) }
                network.reallocate()
                moved = true
            }
            if moved { nextCompletion = network.nextCompletion() }
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
            settled: settledHosts == hosts, originBytes: originBytes, peerBytes: peerBytes, wastedBytes: swarm.cancelledBytes,
            secondCopies: swarm.secondCopies, firstOrder: firstOrder,
            lastFirstOrder: lastFirstOrder, lastVerified: lastVerified, orders: orders, resentOrders: resentOrders,
            beats: beats, engine: cost, pieceTransfers: pieceTransfers, peakTransfers: network.peakTransfers,
            reallocations: network.reallocations, steps: steps, virtualSeconds: now,
            wallSeconds: (ContinuousClock.now - wallStart).seconds)
    }

    /// Moves the transfers to `time` and settles those that ended.
    private mutating func advanceNetwork(to time: Double) {
        completions.removeAll(keepingCapacity: true)
        network.advance(to: time, completed: &completions)
        for completion in completions { completed(completion) }
    }

    private mutating func completed(_ completion: NetworkModel.Completion) {
        let host = Int(completion.receiver), source = Int(completion.source), piece = Int(completion.piece)
        let bytes = parameters.pieceSize(piece)
        if topology.isCDN(source) { originBytes += Double(bytes) } else { peerBytes += Double(bytes) }
        pieceTransfers += 1
        let transfer = PieceSwarm.Transfer(source: completion.source, receiver: completion.receiver, piece: completion.piece)
        guard swarm.completed(transfer, bytes: bytes, now: completion.time, actions: &actions) != nil else {
            swarm.wasted(Double(bytes))  // cancelled in this very step: carried for nothing
            return
        }
        perform()
        markInterested(host)
        verifiedPieces += 1
        agents[host].verifiedBytes += bytes
        // Its availability stream tells the hosts watching it.
        events.schedule(.availability, host: host, at: completion.time + parameters.availabilityLatency, generation: UInt32(piece))
        if agents[host].phase == .downloading && swarm.holdsAll(host) {
            downloadFinished(host, at: completion.time)
        } else if swarm.haveCount(host) == 1 {
            wake(host, at: completion.time)  // it serves pieces now: HBS should hear of it
        }
    }

    /// Carries out what the swarm asked of the network: transfers started and cancelled.
    private mutating func perform() {
        for action in actions {
            switch action {
            case .start(let transfer):
                network.start(from: Int(transfer.source), to: Int(transfer.receiver), piece: Int(transfer.piece),
                              bytes: Double(parameters.pieceSize(Int(transfer.piece))))
            case .cancel(let transfer):
                let size = Double(parameters.pieceSize(Int(transfer.piece)))
                if let carried = network.cancel(from: Int(transfer.source), to: Int(transfer.receiver), piece: Int(transfer.piece), bytes: size) {
                    cancelledTransfers += 1
                    swarm.wasted(carried)
                    if topology.isCDN(Int(transfer.source)) { originBytes += carried } else { peerBytes += carried }
                }
            }
        }
        actions.removeAll(keepingCapacity: true)
    }

    mutating func markInterested(_ host: Int) {
        guard !isInterested[host] else { return }
        isInterested[host] = true
        interested.append(Int32(host))
    }

    /// The host looks at its download again at `time`, unless it will sooner anyway.
    mutating func scheduleWake(_ host: Int, at time: Double) {
        guard time < wakeAt[host] else { return }
        wakeAt[host] = time
        events.schedule(.wake, host: host, at: time)
    }

    private mutating func handle(_ event: EventQueue.Event) {
        let host = Int(event.host)
        switch event.kind {
        case .beat:
            guard event.generation == agents[host].beatGeneration else { return }  // rescheduled since
            agents[host].scheduledAt = .infinity
            gridBeat(host, at: event.time)
        case .wakeUp:
            immediateBeat(host, at: event.time, phaseAfter: true)
        case .restart:
            // The last beat of the old version, then the new one starts and beats at once.
            agents[host].phase = .restarting
            immediateBeat(host, at: event.time)
            agents[host].phase = .upgraded
            swarm.finish(host)  // the old process and its download are gone
            immediateBeat(host, at: event.time)
        case .installFailed:
            agents[host].phase = .failed
            immediateBeat(host, at: event.time)
        case .sweep:
            sweep(at: event.time)
            events.schedule(.sweep, host: 0, at: event.time + parameters.sweepSeconds)
        case .retryDue:
            if elision.phase[host] == .failed { sweep(at: event.time) }
        case .deadlineDue:
            if elision.phase[host] == .active { sweep(at: event.time) }
        case .wake:
            if wakeAt[host] <= event.time { wakeAt[host] = .infinity }
            markInterested(host)
        case .learn:
            swarm.learn(host, source: Int(event.generation))
            markInterested(host)
        case .availability:
            news.removeAll(keepingCapacity: true)
            swarm.announce(host, piece: Int(event.generation), interested: &news)
            for other in news { markInterested(Int(other)) }
        }
    }

    /// HBS's sweep at `time` (once per engine second).
    private mutating func sweep(at time: Double) {
        let second = Int64(time.rounded(.down))
        guard second != lastSweep else { return }
        lastSweep = second
        let started = ContinuousClock.now
        engine.sweep(now: epoch + second)
        cost.sweeps.add((ContinuousClock.now - started).seconds)
        followOutbox(at: time)
        wakeSuccessors(after: time)
    }

    /// Reads what the engine changed: hosts done or given up on, retries and deadlines to
    /// sweep for, and what beat elision follows.
    mutating func followOutbox(at now: Double) {
        for event in engine.takeOutbox() {
            switch event {
            case .hostUpdated(_, let name, let progress):
                guard let host = topology.host(named: name) else { continue }
                let before = elision.phase[host]
                elision.note(event, host: host)
                // A host the engine moved on its own (a retry due, a lease or deadline run
                // out) may have something to say at once.
                if elision.phase[host] != before { wake(host, at: now) }
                switch progress.phase {
                case .done where !agents[host].settled:
                    agents[host].settled = true
                    agents[host].confirmedAt = now
                    confirmTimes.append(now)
                    settledHosts += 1
                case .failed where before != .failed:
                    failures += 1
                    if let retry = progress.retryAt {
                        events.schedule(.retryDue, host: host, at: Double(retry - epoch))
                    } else if !agents[host].settled {
                        agents[host].settled = true
                        failedHosts += 1
                        settledHosts += 1
                    }
                case .admitted where before != .active:
                    if let deadline = progress.deadline { events.schedule(.deadlineDue, host: host, at: Double(deadline - epoch + 1)) }
                default:
                    break
                }
            case .agentSeen(let agent):
                elision.note(event, host: topology.host(named: agent.hostname))
            case .rolloutCreated, .rolloutPhase:
                elision.note(event, host: nil, index: topology.host(named:))
            case .hostEnrolled, .hostForgotten, .rolloutDropped, .noted:
                break  // simulated hosts do not enrol, and stay seen; nobody watches the events
            }
        }
    }
}
