import Rollouts

/// Which beats need not reach the engine because its answer cannot differ from one it just
/// gave. Follows the engine's events (its outbox) to know each host's phase in the rollout,
/// and counts a generation whenever something an admission depends on changes: a rollout's
/// phase, a host's phase, batch or first source, a host's version or what it holds.
///
/// - Hosts done, or failed (waiting for a retry or given up): the engine answers nothing
///   but a beat interval whatever they say, and only refreshes their last-seen time.
/// - Hosts pending, when peers do not serve (`pendingToo`): if a pending host got no order in
///   the current generation, no pending host of its batch gets one until the generation moves
///   (admission then reads only the rollout, the batch and the CDNs' slot counts). Where peers
///   serve, the planner's answer depends on the host (its nearest peers, a rotating window of
///   candidates): with whole-file peers (`gate`) pending hosts skip the engine while no CDN
///   and no peer has a free slot (`AdmissionGate`); in a swarm they always beat for real.
///
/// Hosts upgrading always beat for real. A skipped host still beats for real every
/// `refresh` seconds, so HBS never takes it for absent.
struct BeatElision {
    /// A host's phase in the active rollout, as the engine's last event about it said.
    enum Phase: UInt8 {
        case unknown, pending, active, done, failed
    }

    private(set) var generation: UInt64 = 1
    let pendingToo: Bool
    private(set) var gate: AdmissionGate?
    /// Maps an order's source to its node, for the gate.
    private let node: (String) -> Int?
    private let release: (name: String, version: String)
    private(set) var phase: [Phase]
    private var batch: [Int32]
    private var signature: [Int]
    private var held: [UInt8]
    /// Per batch, the generation in which a pending host holding nothing got no order.
    private var fruitless: [UInt64] = []

    init(
        hosts: Int, pendingToo: Bool, gate: AdmissionGate? = nil, release: (name: String, version: String) = ("", ""),
        node: @escaping (String) -> Int? = { _ in nil }
    ) {
        self.pendingToo = pendingToo
        self.gate = gate
        self.release = release
        self.node = node
        phase = [Phase](repeating: .unknown, count: hosts)
        batch = [Int32](repeating: 0, count: hosts)
        signature = [Int](repeating: 0, count: hosts)
        held = [UInt8](repeating: 0, count: hosts)
    }

    /// Follows one engine event about `host` (nil for rollout-wide events). A new rollout's
    /// hosts are read with `index`, which maps a hostname to its host.
    mutating func note(_ event: FleetEvent, host: Int?, index: (String) -> Int? = { _ in nil }) {
        switch event {
        case .rolloutCreated(let rollout):
            generation += 1
            for (name, progress) in rollout.hosts {
                guard let host = index(name) else { continue }
                phase[host] = Self.phase(of: progress.phase)
                batch[host] = Int32(progress.batch)
            }
        case .rolloutPhase:
            generation += 1
        case .agentSeen(let agent):
            guard let host else { return }
            gate?.serving(host, agent.held.contains { $0.complete && $0.name == release.name && $0.version == release.version })
            let mark: UInt8 = agent.held.isEmpty ? 0 : agent.held.contains(where: \.complete) ? 2 : 1
            if mark != held[host] {
                held[host] = mark
                generation += 1
            }
        case .hostUpdated(_, _, let progress):
            guard let host else { return }
            var hasher = Hasher()
            hasher.combine(progress.phase)
            hasher.combine(progress.batch)
            hasher.combine(progress.sources.first)
            hasher.combine(progress.retryAt == nil)
            let mark = hasher.finalize()
            batch[host] = Int32(progress.batch)
            phase[host] = Self.phase(of: progress.phase)
            let fetching = progress.phase == .admitted || progress.phase == .downloading
            gate?.fetching(host, from: fetching ? progress.sources.first.flatMap(node) : nil)
            if mark != signature[host] {
                signature[host] = mark
                generation += 1
            }
        case .hostEnrolled, .hostForgotten, .rolloutDropped, .noted:
            break
        }
    }

    private static func phase(of phase: HostPhase) -> Phase {
        switch phase {
        case .pending, .absent: .pending
        case .admitted, .downloading, .installing, .restarting, .confirming: .active
        case .done: .done
        case .failed: .failed
        }
    }

    func batch(of host: Int) -> Int { Int(batch[host]) }

    /// Whether `host`'s beat may skip the engine.
    func mayElide(_ host: Int) -> Bool {
        switch phase[host] {
        case .done, .failed: return true
        case .pending:
            guard pendingToo else { return gate?.closed ?? false }
            let index = Int(batch[host])
            return index < fruitless.count && fruitless[index] == generation
        case .unknown, .active: return false
        }
    }

    /// Whether a pending host that may skip the engine can wait parked (`PhaseParking`) until
    /// the generation moves.
    func parkable(_ host: Int) -> Bool { pendingToo && mayElide(host) }

    /// A pending host beat and got no order.
    mutating func noOrder(for host: Int) {
        guard pendingToo, phase[host] == .pending else { return }
        let index = Int(batch[host])
        if fruitless.count <= index { fruitless += [UInt64](repeating: 0, count: index + 1 - fruitless.count) }
        fruitless[index] = generation
    }
}
