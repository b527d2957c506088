/// Every host's pieces and sources, and the choice of the next pieces to ask for, following
/// `SwarmPolicy`. The one place the virtual agents' download policy lives.
///
/// Pieces held and in flight are bitsets (one run of 64-bit words per host). For rarest first
/// each host keeps, per piece, how many of its peer sources hold it: a peer that verifies a
/// piece adds one to the count of every host that lists it as a source (its subscribers), so a
/// choice reads counts and never scans other hosts. CDNs hold every piece and add the same to
/// every count, so they are left out of it.
struct PieceSwarm {
    struct Source {
        var node: Int32
        var inFlight: Int16
        var isCDN: Bool
        var isFallback: Bool
        /// Verified bytes fetched from it in this attempt.
        var bytes: Int64
    }

    /// A piece to ask `source` for.
    struct Pick {
        var source: Int32
        var piece: Int32
    }

    let policy: SwarmPolicy
    let hostCount: Int
    let pieceCount: Int
    let words: Int
    private let lastWordMask: UInt64
    private var have: [UInt64]
    private var fetching: [UInt64]
    private(set) var haveCount: [Int32]
    private(set) var inFlight: [Int32]
    /// Peer sources (not fallbacks) of host h holding piece p: `available[h * pieceCount + p]`.
    private var available: [UInt16]
    /// CDN sources (not fallbacks) of each host: they offer every piece.
    private var cdnSources: [Int16]
    private(set) var sources: [[Source]]
    /// Hosts listing this host as a (non-fallback) source.
    private var subscribers: [[Int32]]
    private var startedAt: [Double]
    private(set) var downloading: [Bool]
    /// Where the next fill starts in a host's source list (round robin).
    private var nextSource: [Int32]
    private var random: SimulationRandom

    init(hostCount: Int, pieceCount: Int, policy: SwarmPolicy, seed: UInt64) {
        precondition(pieceCount > 0 && pieceCount < Int(UInt16.max))
        self.policy = policy
        self.hostCount = hostCount
        self.pieceCount = pieceCount
        words = (pieceCount + 63) / 64
        let tail = pieceCount % 64
        lastWordMask = tail == 0 ? ~0 : (1 << UInt64(tail)) - 1
        have = [UInt64](repeating: 0, count: hostCount * words)
        fetching = have
        haveCount = [Int32](repeating: 0, count: hostCount)
        inFlight = haveCount
        available = [UInt16](repeating: 0, count: hostCount * pieceCount)
        cdnSources = [Int16](repeating: 0, count: hostCount)
        sources = [[Source]](repeating: [], count: hostCount)
        subscribers = [[Int32]](repeating: [], count: hostCount)
        startedAt = [Double](repeating: 0, count: hostCount)
        downloading = [Bool](repeating: false, count: hostCount)
        nextSource = haveCount
        random = SimulationRandom(seed: seed)
    }

    func holdsAll(_ host: Int) -> Bool { Int(haveCount[host]) == pieceCount }

    func holds(_ host: Int, piece: Int) -> Bool { have[host * words + piece >> 6] & (1 << UInt64(piece & 63)) != 0 }

    /// A new attempt for `host`: its old sources are forgotten, its verified pieces kept.
    mutating func begin(_ host: Int, now: Double) {
        for source in sources[host] where !source.isCDN && !source.isFallback {
            let node = Int(source.node)
            if let index = subscribers[node].firstIndex(of: Int32(host)) { subscribers[node].swapAt(index, subscribers[node].count - 1); subscribers[node].removeLast() }
        }
        sources[host].removeAll()
        let row = host * pieceCount
        for piece in 0..<pieceCount { available[row + piece] = 0 }
        cdnSources[host] = 0
        startedAt[host] = now
        downloading[host] = !holdsAll(host)
        nextSource[host] = 0
    }

    /// Adds `node` to the host's sources unless it is there already; true when added.
    mutating func add(source node: Int, isCDN: Bool, isFallback: Bool, to host: Int) -> Bool {
        guard node != host, !sources[host].contains(where: { Int($0.node) == node }) else { return false }
        sources[host].append(Source(node: Int32(node), inFlight: 0, isCDN: isCDN, isFallback: isFallback, bytes: 0))
        if isFallback { return true }
        if isCDN {
            cdnSources[host] += 1
        } else {
            subscribers[node].append(Int32(host))
            let row = host * pieceCount
            for word in 0..<words {
                var bits = have[node * words + word]
                while bits != 0 {
                    let piece = word * 64 + bits.trailingZeroBitCount
                    bits &= bits - 1
                    available[row + piece] += 1
                }
            }
        }
        return true
    }

    /// The host has every piece: it asks for nothing more.
    mutating func finish(_ host: Int) { downloading[host] = false }

    /// The transfer of `piece` from `source` to `host` ended with the piece verified. Hosts
    /// that may now ask one of their sources for something new go into `interested`.
    mutating func verified(piece: Int, at host: Int, from source: Int, bytes: Int64, interested: inout [Int32]) {
        let word = host * words + piece >> 6, bit: UInt64 = 1 << UInt64(piece & 63)
        fetching[word] &= ~bit
        inFlight[host] -= 1
        if let index = sources[host].firstIndex(where: { Int($0.node) == source }) {
            sources[host][index].inFlight -= 1
            sources[host][index].bytes += bytes
        }
        interested.append(Int32(host))
        grant(piece, to: host, interested: &interested)
    }

    /// `host` holds `piece` verified from now on; its subscribers count one more holder.
    mutating func grant(_ piece: Int, to host: Int, interested: inout [Int32]) {
        let word = host * words + piece >> 6, bit: UInt64 = 1 << UInt64(piece & 63)
        guard have[word] & bit == 0 else { return }
        have[word] |= bit
        haveCount[host] += 1
        for subscriber in subscribers[host] {
            let other = Int(subscriber)
            available[other * pieceCount + piece] &+= 1
            if downloading[other] && Int(inFlight[other]) < policy.maxInFlight
                && (have[other * words + piece >> 6] | fetching[other * words + piece >> 6]) & bit == 0 {
                interested.append(subscriber)
            }
        }
    }

    /// The moment `host` may first use its fallback sources.
    func fallbackDue(_ host: Int) -> Double { startedAt[host] + policy.fallbackPatience }

    /// Chooses pieces for `host`'s free slots, one source after the other (round robin) until
    /// no source with a free slot has anything the host still needs; marks them in flight.
    mutating func fill(_ host: Int, now: Double, picks: inout [Pick]) {
        guard downloading[host] else { return }
        let count = sources[host].count
        guard count > 0 else { return }
        var progress = true
        while progress && Int(inFlight[host]) < policy.maxInFlight {
            progress = false
            let first = Int(nextSource[host]) % count
            for step in 0..<count {
                if Int(inFlight[host]) >= policy.maxInFlight { break }
                let index = (first + step) % count
                let source = sources[host][index]
                if Int(source.inFlight) >= policy.limit(isCDN: source.isCDN) { continue }
                guard let piece = choose(for: host, from: source, now: now) else { continue }
                let word = host * words + piece >> 6
                fetching[word] |= 1 << UInt64(piece & 63)
                inFlight[host] += 1
                sources[host][index].inFlight += 1
                picks.append(Pick(source: source.node, piece: Int32(piece)))
                nextSource[host] = Int32((index + 1) % count)
                progress = true
            }
        }
    }

    /// The rarest piece `source` can give `host` (fewest of the host's peer sources hold it),
    /// a random one among the rarest; nil when it has nothing the host still needs.
    private mutating func choose(for host: Int, from source: Source, now: Double) -> Int? {
        if source.isFallback && (cdnSources[host] > 0 || now < startedAt[host] + policy.fallbackPatience) { return nil }
        let row = host * pieceCount
        let own = host * words
        let theirs = Int(source.node) * words
        var best = -1
        var bestCount = UInt16.max
        var ties = 0
        for word in 0..<words {
            var candidates = ~(have[own + word] | fetching[own + word])
            if word == words - 1 { candidates &= lastWordMask }
            if !source.isCDN { candidates &= have[theirs + word] }
            while candidates != 0 {
                let piece = word * 64 + candidates.trailingZeroBitCount
                candidates &= candidates - 1
                let holders = available[row + piece]
                // A fallback serves only what no other source offers.
                if source.isFallback && holders > 0 { continue }
                if holders < bestCount {
                    best = piece
                    bestCount = holders
                    ties = 1
                } else if holders == bestCount {
                    ties += 1
                    if random.below(ties) == 0 { best = piece }
                }
            }
        }
        return best >= 0 ? best : nil
    }
}
