import Rollouts
import Wire

/// When each agent beats, and which beats reach the engine.
///
/// An agent beats on its own grid (`anchor + k * interval`, the interval HBS's last reply
/// asked for). A beat whose answer cannot differ from the last one (`BeatElision`) is skipped,
/// and so are the grid points in between: a quiet host's next beat is queued only when it
/// must refresh its last-seen time or its lease (`refreshSeconds`, `activeRefreshSeconds`), or
/// when its state changes (`wake`). Pending hosts that just got no order wait in
/// `PhaseParking`; when something changes, the one whose beat comes first is woken, exactly
/// as if every one of them had beaten.
extension FleetSimulator {
    /// A quiet upgrading host renews its lease at least this often: 10 s before it runs out.
    var activeRefreshSeconds: Double { Double(max(1, leaseSeconds - 10)) }

    /// A beat on the host's grid, due now.
    mutating func gridBeat(_ host: Int, at now: Double) {
        if parking.isParked(host) { parking.remove(host) }
        if let batch = successorBatch[host] {
            successorBatch[host] = nil
            successors[batch] = nil
        }
        let skipped = max(0, ((now - agents[host].lastGridBeat) / agents[host].interval).rounded() - 1)
        cost.elidedBeats += Int(skipped)
        beats += Int(skipped) + 1
        agents[host].lastGridBeat = now
        if mustSend(host, at: now) {
            send(host, at: now)
        } else {
            cost.elidedBeats += 1
        }
        queueNextBeat(host, after: now)
    }

    /// A beat off the grid (the long-poll answer at the rollout's start, the one before a
    /// restart, the new version's first, a failure's): then the grid starts again from it.
    mutating func immediateBeat(_ host: Int, at now: Double, phaseAfter: Bool = false) {
        if parking.isParked(host) { parking.remove(host) }
        beats += 1
        if mustSend(host, at: now) {
            send(host, at: now)
        } else {
            cost.elidedBeats += 1
        }
        agents[host].anchor = phaseAfter ? now + agents[host].interval * (1 - random.unit()) : now
        agents[host].lastGridBeat = phaseAfter ? agents[host].anchor - agents[host].interval : now
        queueNextBeat(host, after: now)
    }

    /// The host's state changed between beats: its next grid beat tells the engine.
    mutating func wake(_ host: Int, at now: Double) {
        if parking.isParked(host) { parking.remove(host) }
        let next = agents[host].nextBeat(after: now)
        if agents[host].scheduledAt > next { schedule(host, at: next) }
    }

    private mutating func schedule(_ host: Int, at time: Double) {
        agents[host].beatGeneration &+= 1
        agents[host].scheduledAt = time
        events.schedule(.beat, host: host, at: time, generation: agents[host].beatGeneration)
    }

    /// Whether this beat may change anything at the engine.
    private func mustSend(_ host: Int, at now: Double) -> Bool {
        guard parameters.elideBeats, reportKey(host) == agents[host].reportedKey else { return true }
        let since = now - agents[host].lastEngineBeat
        switch elision.phase[host] {
        case .unknown: return true
        case .done, .failed: return since >= parameters.refreshSeconds
        case .pending: return !elision.mayElide(host) || since >= parameters.refreshSeconds
        case .active: return !quietWhileActive(host) || since >= activeRefreshSeconds
        }
    }

    /// An upgrading host whose beats only renew its lease: outside a swarm always; in one, once
    /// its orders list all the peers HBS would add (it re-sends orders only below that).
    private func quietWhileActive(_ host: Int) -> Bool {
        !(mode.pieceRelay && agents[host].phase == .downloading && listedPeers(host) < parameters.planner.swarmPeers)
    }

    /// Queues the host's next beat: the next grid point, or, for a host whose beats change
    /// nothing now, the first one that refreshes it (parking pending ones).
    private mutating func queueNextBeat(_ host: Int, after now: Double) {
        let next = agents[host].nextBeat(after: now)
        guard parameters.elideBeats, reportKey(host) == agents[host].reportedKey else { return schedule(host, at: next) }
        let refresh: Double
        switch elision.phase[host] {
        case .unknown:
            return schedule(host, at: next)
        case .done, .failed:
            refresh = parameters.refreshSeconds
        case .pending:
            // Parked hosts are woken when something changes; one beating at another interval
            // (HBS paces waiting hosts by their number) cannot be parked and beats on its grid.
            guard elision.parkable(host), agents[host].interval == parking.interval else { return schedule(host, at: next) }
            refresh = parameters.refreshSeconds
            parking.park(host, batch: elision.batch(of: host), anchor: agents[host].anchor)
        case .active:
            guard quietWhileActive(host) else { return schedule(host, at: next) }
            refresh = activeRefreshSeconds
        }
        let due = agents[host].lastEngineBeat + refresh
        schedule(host, at: due <= next ? next : agents[host].nextBeat(after: due - 1e-9))
    }

    /// After the engine changed something admissions depend on: in each batch with parked
    /// hosts, the one that beats first is woken (unless one is on its way already).
    mutating func wakeSuccessors(after now: Double) {
        guard elision.generation != wokenGeneration else { return }
        wokenGeneration = elision.generation
        for batch in parking.batches where successors[batch] == nil {
            guard let (host, _) = parking.successor(in: batch, after: now) else { continue }
            parking.remove(host)
            successors[batch] = host
            successorBatch[host] = batch
            schedule(host, at: agents[host].nextBeat(after: now))
        }
    }

    /// Sends the host's beat to the engine and carries out what it answers.
    mutating func send(_ host: Int, at now: Double) {
        let beat = request(for: host)
        agents[host].reportedKey = reportKey(host)
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
        if reply.nextBeatSeconds != agents[host].interval {
            agents[host].interval = reply.nextBeatSeconds
            agents[host].anchor = now
            agents[host].lastGridBeat = now
        }
        wakeSuccessors(after: now)
    }
}
