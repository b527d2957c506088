import Swarm
import Wire

/// The virtual agents' downloads, each run by the agent's own swarm policy (`PieceScheduler`,
/// the same code `DownloadSession` drives), and what the agent's I/O does around it, modeled:
///
/// - availability is pushed: a peer's snapshot reaches a host `availabilityLatency` after the
///   host adds it, and each piece it verifies reaches every host watching it that much later
///   (the stream event); a CDN answers "no availability" (404) as late, and then holds
///   everything;
/// - a peer's range server sends `uploadSlots` pieces at once and queues `uploadQueue` more per
///   slot (started the moment a slot frees); beyond that it refuses with when to come back,
///   estimated as the agent's `UploadSlots` does (what is ahead, at the uplink);
/// - a host's download cap (`pacedDownload`) paces piece starts as the agent's `RateLimiter`
///   does;
/// - a copy that loses to another (a hedge, the endgame) or is given up on is cancelled.
///
/// Not modeled: request round trips (a piece request, a refusal cost no time), failures of
/// sources.
struct PieceSwarm {
    /// A piece on its way from a node to a host.
    struct Transfer: Equatable {
        var source: Int32
        var receiver: Int32
        var piece: Int32
    }

    /// What the network must do.
    enum Action: Equatable {
        case start(Transfer)
        case cancel(Transfer)
    }

    /// A host watching a node's availability: which of its download's sources the node is.
    private struct Watcher {
        var host: Int32
        var slot: Int32
    }

    let policy: SwarmPolicy
    /// The download cap pieces start under (bytes per second); nil: none.
    let pacedDownload: Double?
    let hostCount: Int
    let pieceCount: Int
    let uplink: Double
    /// Every host's verified pieces (kept across attempts: a new attempt resumes from them).
    private(set) var have: [PieceSet]
    /// Each host's download in progress (nil: none).
    private(set) var downloads: [PieceScheduler?]
    /// Per host, the node behind each of its download's sources.
    private var sourceNodes: [[Int32]]
    /// Per node, the hosts watching its availability.
    private var watchers: [[Watcher]]
    /// Per peer: when each piece it is sending started, and requests waiting for a slot.
    private var running: [[Double]]
    private var queued: [[Transfer]]
    /// Per host, when its download cap is next free.
    private var capFreeAt: [Double]
    private var random: SplitMix64
    private let pieceBytes: (Int) -> Int64
    /// Second copies started, and bytes carried by copies that were cancelled.
    private(set) var secondCopies = 0
    private(set) var cancelledBytes = 0.0

    init(
        hostCount: Int, nodeCount: Int, pieceCount: Int, policy: SwarmPolicy, pacedDownload: Double?, uplink: Double, seed: UInt64,
        pieceBytes: @escaping (Int) -> Int64 = { _ in 1 }
    ) {
        self.policy = policy
        self.pacedDownload = pacedDownload
        self.hostCount = hostCount
        self.pieceCount = pieceCount
        self.uplink = uplink
        have = [PieceSet](repeating: PieceSet(capacity: pieceCount), count: hostCount)
        downloads = [PieceScheduler?](repeating: nil, count: hostCount)
        sourceNodes = [[Int32]](repeating: [], count: hostCount)
        watchers = [[Watcher]](repeating: [], count: nodeCount)
        running = [[Double]](repeating: [], count: hostCount)
        queued = [[Transfer]](repeating: [], count: hostCount)
        capFreeAt = [Double](repeating: 0, count: hostCount)
        random = SplitMix64(seed: seed)
        self.pieceBytes = pieceBytes
    }

    func holdsAll(_ host: Int) -> Bool { have[host].isFull }
    func haveCount(_ host: Int) -> Int { have[host].count }
    func isDownloading(_ host: Int) -> Bool { downloads[host].map { !$0.isComplete } ?? false }

    /// A new attempt for `host`: a download of its own (its old sources forgotten, its
    /// verified pieces kept), its tie order drawn from the run's seed, or `seed` when given.
    mutating func begin(_ host: Int, now: Double, share: SeedShare?, seed: UInt64? = nil) {
        downloads[host] = PieceScheduler(
            pieceCount: pieceCount, have: have[host], policy: policy, seed: seed ?? random.next(), share: share, now: now)
        sourceNodes[host] = []
    }

    /// `peer` watches `host`'s availability and names its own range server: if `host` is
    /// downloading too, its scheduler may take `peer` in as a source (`addAnnouncedPeer`); its
    /// index then (its availability is due after the latency).
    mutating func announce(peer: Int, url: String, to host: Int) -> Int? {
        guard host < hostCount, peer != host, isDownloading(host), let index = downloads[host]!.addAnnouncedPeer(url) else { return nil }
        if index == sourceNodes[host].count { sourceNodes[host].append(Int32(peer)) }
        watchers[peer].append(Watcher(host: Int32(host), slot: Int32(index)))
        return index
    }

    /// Adds `node` (its base URL `url`) to the host's download; its index among the download's
    /// sources when it is new (or revived): its availability is then due after the latency
    /// (`learn`), unless it is a fallback.
    mutating func add(source node: Int, url: String, isFallback: Bool, to host: Int) -> Int? {
        guard node != host, downloads[host] != nil, let index = downloads[host]!.addSource(url, fallback: isFallback) else { return nil }
        if index == sourceNodes[host].count { sourceNodes[host].append(Int32(node)) }
        if !isFallback && node < hostCount { watchers[node].append(Watcher(host: Int32(host), slot: Int32(index))) }
        return isFallback ? nil : index
    }

    /// The availability of the host's source `index` arrives: a peer's snapshot, or a CDN's
    /// "holds everything".
    mutating func learn(_ host: Int, source index: Int) {
        guard downloads[host] != nil, index < sourceNodes[host].count else { return }
        let node = Int(sourceNodes[host][index])
        downloads[host]!.setHoldings(index, node < hostCount ? .pieces(have[node]) : .everything)
    }

    /// `node`'s verified `piece` reaches the hosts watching it; the hosts for which it may be
    /// news (they want it and that source has room).
    mutating func announce(_ node: Int, piece: Int, interested: inout [Int32]) {
        var index = 0
        while index < watchers[node].count {
            let watcher = watchers[node][index]
            let host = Int(watcher.host)
            guard downloads[host].map({ !$0.isComplete }) ?? false else {
                watchers[node].swapAt(index, watchers[node].count - 1)  // done downloading: unwatched
                watchers[node].removeLast()
                continue
            }
            downloads[host]!.sourceHas(Int(watcher.slot), piece: piece)
            if !downloads[host]!.have.contains(piece) { interested.append(watcher.host) }
            index += 1
        }
    }

    /// Asks for the host's pieces as its scheduler chooses, as far as the cap, the peers' slots
    /// and queues allow; returns when to look again without news (a deadline, a back-off, the cap).
    mutating func fill(_ host: Int, now: Double, actions: inout [Action]) -> Double? {
        guard downloads[host] != nil, !downloads[host]!.isComplete else { return nil }
        for (piece, index) in downloads[host]!.expired(now: now) {
            stop(Transfer(source: sourceNodes[host][index], receiver: Int32(host), piece: Int32(piece)), now: now, actions: &actions)
            downloads[host]!.failed(piece: piece, from: index, .tooSlow("past its deadline"), now: now)
        }
        while true {
            if pacedDownload != nil, capFreeAt[host] > now { return min(capFreeAt[host], downloads[host]!.nextWake(now: now) ?? .infinity) }
            guard let assignment = downloads[host]!.next(now: now) else { break }
            let node = sourceNodes[host][assignment.source]
            let transfer = Transfer(source: node, receiver: Int32(host), piece: Int32(assignment.piece))
            let bytes = pieceBytes(assignment.piece)
            if Int(node) < hostCount && running[Int(node)].count >= policy.uploadSlots {
                let waiting = queued[Int(node)].count
                guard waiting < policy.uploadSlots * policy.uploadQueue else {
                    // Busy: when to come back, as the peer's UploadSlots estimates it.
                    let time = Double(bytes) / uplink
                    let hint = UploadHint.retryAfter(
                        remaining: running[Int(node)].map { time - (now - $0) }, queued: Double(waiting) * time, slots: policy.uploadSlots)
                    downloads[host]!.failed(piece: assignment.piece, from: assignment.source, .busy(retryAfter: hint), now: now)
                    continue
                }
                queued[Int(node)].append(transfer)
            } else {
                if Int(node) < hostCount { running[Int(node)].append(now) }
                actions.append(.start(transfer))
            }
            if assignment.kind != .fresh { secondCopies += 1 }
            if let rate = pacedDownload {
                // Pieces start in turn under the cap; the schedule may lag by one chunk.
                let slack = Double(RatePacing.chunkBytes(bytesPerSecond: rate)) / rate
                capFreeAt[host] = max(capFreeAt[host], now - slack) + Double(bytes) / rate
            }
        }
        return downloads[host]!.nextWake(now: now)
    }

    /// A transfer ended with its piece verified at `now`. The uploader's slot goes to its next
    /// queued request; other copies of the piece are cancelled. True when the host now holds
    /// the piece; nil when the copy had been cancelled meanwhile (another won in the same step):
    /// its bytes were carried for nothing.
    mutating func completed(_ transfer: Transfer, bytes: Int64, now: Double, actions: inout [Action]) -> Bool? {
        let host = Int(transfer.receiver), piece = Int(transfer.piece)
        guard let download = downloads[host], let index = sourceNodes[host].firstIndex(of: transfer.source),
              download.isInFlight(piece: piece, from: index)
        else {
            // Only what `give` hands out directly (tests) has no download behind it.
            guard downloads[host] == nil, Int(transfer.source) >= hostCount else { return nil }
            have[host].insert(piece)
            return true
        }
        freeSlot(of: Int(transfer.source), now: now, actions: &actions)
        have[host].insert(piece)
        for loser in downloads[host]!.delivered(piece: piece, from: index, bytes: bytes, now: now) {
            stop(Transfer(source: sourceNodes[host][loser], receiver: transfer.receiver, piece: transfer.piece), now: now, actions: &actions)
        }
        return true
    }

    /// Stops a copy: out of its uploader's queue, or cancelled on the network (its slot freed).
    private mutating func stop(_ transfer: Transfer, now: Double, actions: inout [Action]) {
        let node = Int(transfer.source)
        if node < hostCount, let position = queued[node].firstIndex(of: transfer) {
            queued[node].remove(at: position)
            return
        }
        actions.append(.cancel(transfer))
        freeSlot(of: node, now: now, actions: &actions)
    }

    /// A peer's upload ended (its oldest, near enough): its slot goes to the first request
    /// waiting, if any.
    private mutating func freeSlot(of node: Int, now: Double, actions: inout [Action]) {
        guard node < hostCount, !running[node].isEmpty else { return }
        running[node].removeFirst()
        if !queued[node].isEmpty {
            running[node].append(now)
            actions.append(.start(queued[node].removeFirst()))
        }
    }

    /// Bytes a cancelled copy had carried (the network says), for the report.
    mutating func wasted(_ bytes: Double) { cancelledBytes += bytes }

    /// The host's download is over (or given up): it asks for nothing more.
    mutating func finish(_ host: Int) { downloads[host] = nil }

    /// The nodes of the host's sources and the verified bytes each delivered.
    func sourceBytes(_ host: Int) -> [(node: Int, bytes: Int64)] {
        guard let download = downloads[host] else { return [] }
        return download.sources.indices.compactMap { index in
            let bytes = download.sources[index].deliveredBytes
            return bytes > 0 ? (Int(sourceNodes[host][index]), bytes) : nil
        }
    }

    /// Peers (not CDNs, not fallbacks) the host's orders listed.
    func listedPeers(_ host: Int) -> Int {
        guard let download = downloads[host] else { return 0 }
        return download.sources.indices.reduce(0) { count, index in
            count + (!download.sources[index].isFallback && Int(sourceNodes[host][index]) < hostCount ? 1 : 0)
        }
    }
}
