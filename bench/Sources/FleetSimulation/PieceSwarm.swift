/// Every host's pieces and sources, what it knows of its peers' pieces, and the choice of the
/// next pieces to ask for, following `SwarmPolicy`: the one place the virtual agents' download
/// policy lives.
///
/// Pieces held and in flight are bitsets (a run of 64-bit words per host). What a host knows
/// of a peer source is that peer's piece map as of the host's last poll (a bitset per source);
/// per piece, the host counts the sources that hold it (CDNs hold every piece), so a choice
/// reads counts and never scans other hosts.
struct PieceSwarm {
    struct Source {
        var node: Int32
        var inFlight: Int16
        var isCDN: Bool
        var isFallback: Bool
        /// Its last piece map listed every piece (or it is a CDN): its map needs no more reads.
        var complete: Bool
        /// Verified bytes fetched from it in this attempt.
        var bytes: Int64
        /// It refused a piece (all upload slots taken): not asked again before this moment.
        var busyUntil: Double
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
    /// Sources (no fallbacks) of host h known to hold piece p: `holders[h * pieceCount + p]`.
    private var holders: [UInt16]
    private(set) var sources: [[Source]]
    /// Per host, each source's last known piece map: `known[h][slot * words + w]`.
    private var known: [[UInt64]]
    private var startedAt: [Double]
    private(set) var downloading: [Bool]
    /// Pieces each host is sending to peers now (its upload slots in use).
    private var uploads: [Int32]
    /// Per host: pieces in flight from sources other than fallbacks, and since when none has
    /// been (the download starves).
    private var primaryInFlight: [Int32]
    private(set) var starvingSince: [Double]
    /// Per host: the seed of this download's tie-break order.
    private var order: [UInt64]
    private var random: SimulationRandom
    private var offered: [UInt64]
    /// Per host, when its download cap is next free (`SwarmPolicy.pacedDownload`).
    private var capFreeAt: [Double]
    /// Bytes of each piece, for the cap.
    private let pieceBytes: (Int) -> Int64

    init(hostCount: Int, pieceCount: Int, policy: SwarmPolicy, seed: UInt64, pieceBytes: @escaping (Int) -> Int64 = { _ in 1 }) {
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
        holders = [UInt16](repeating: 0, count: hostCount * pieceCount)
        sources = [[Source]](repeating: [], count: hostCount)
        known = [[UInt64]](repeating: [], count: hostCount)
        startedAt = [Double](repeating: 0, count: hostCount)
        downloading = [Bool](repeating: false, count: hostCount)
        uploads = haveCount
        primaryInFlight = haveCount
        starvingSince = startedAt
        order = [UInt64](repeating: 0, count: hostCount)
        random = SimulationRandom(seed: seed)
        offered = [UInt64](repeating: 0, count: words)
        capFreeAt = startedAt
        self.pieceBytes = pieceBytes
    }

    func holdsAll(_ host: Int) -> Bool { Int(haveCount[host]) == pieceCount }

    /// A new attempt for `host`: its old sources are forgotten, its verified pieces kept.
    mutating func begin(_ host: Int, now: Double) {
        sources[host].removeAll()
        known[host].removeAll()
        let row = host * pieceCount
        for piece in 0..<pieceCount { holders[row + piece] = 0 }
        startedAt[host] = now
        starvingSince[host] = now
        downloading[host] = !holdsAll(host)
        order[host] = random.next()
    }

    /// Adds `node` to the host's sources unless it is there already, and reads its piece map
    /// at once; true when added.
    mutating func add(source node: Int, isCDN: Bool, isFallback: Bool, to host: Int) -> Bool {
        guard node != host, !sources[host].contains(where: { Int($0.node) == node }) else { return false }
        sources[host].append(Source(
            node: Int32(node), inFlight: 0, isCDN: isCDN, isFallback: isFallback, complete: isCDN, bytes: 0, busyUntil: 0))
        known[host].append(contentsOf: repeatElement(0, count: words))
        if !isFallback {
            if isCDN {
                let row = host * pieceCount
                for piece in 0..<pieceCount { holders[row + piece] &+= 1 }
            } else {
                _ = refresh(host, slot: sources[host].count - 1)
            }
        }
        return true
    }

    /// The host has every piece: it asks for nothing more.
    mutating func finish(_ host: Int) { downloading[host] = false }

    /// Whether the host still polls some peer's growing piece map.
    func polls(_ host: Int) -> Bool { downloading[host] && sources[host].contains { !$0.complete && !$0.isFallback } }

    /// The host asks its peers whose maps still grow for them again; true when it learnt of
    /// a piece.
    mutating func poll(_ host: Int) -> Bool {
        var learnt = false
        for slot in sources[host].indices where !sources[host][slot].complete && !sources[host][slot].isFallback {
            learnt = refresh(host, slot: slot) || learnt
        }
        return learnt
    }

    private mutating func refresh(_ host: Int, slot: Int) -> Bool {
        let node = Int(sources[host][slot].node)
        let row = host * pieceCount
        var learnt = false
        var count = 0
        for word in 0..<words {
            let now = have[node * words + word]
            var fresh = now & ~known[host][slot * words + word]
            count += now.nonzeroBitCount
            if fresh == 0 { continue }
            learnt = true
            known[host][slot * words + word] = now
            while fresh != 0 {
                holders[row + word * 64 + fresh.trailingZeroBitCount] &+= 1
                fresh &= fresh - 1
            }
        }
        if count == pieceCount { sources[host][slot].complete = true }
        return learnt
    }

    /// The transfer of `piece` from `source` to `host` ended at `now` with the piece verified.
    /// True when the host now has nothing in flight but from fallbacks: it starts starving.
    @discardableResult
    mutating func verified(piece: Int, at host: Int, from source: Int, bytes: Int64, now: Double) -> Bool {
        let word = host * words + piece >> 6, bit: UInt64 = 1 << UInt64(piece & 63)
        fetching[word] &= ~bit
        inFlight[host] -= 1
        if source < hostCount { uploads[source] -= 1 }
        var starts = false
        if let slot = sources[host].firstIndex(where: { Int($0.node) == source }) {
            sources[host][slot].inFlight -= 1
            sources[host][slot].bytes += bytes
            if !sources[host][slot].isFallback {
                primaryInFlight[host] -= 1
                if primaryInFlight[host] == 0 {
                    starvingSince[host] = now
                    starts = true
                }
            }
        }
        grant(piece, to: host)
        return starts
    }

    /// `host` holds `piece` verified from now on (its map lists it at the next poll).
    mutating func grant(_ piece: Int, to host: Int) {
        let word = host * words + piece >> 6, bit: UInt64 = 1 << UInt64(piece & 63)
        guard have[word] & bit == 0 else { return }
        have[word] |= bit
        haveCount[host] += 1
    }

    /// The moment `host` may first use its fallback sources, if it goes on starving.
    func fallbackDue(_ host: Int) -> Double { starvingSince[host] + policy.fallbackPatience }

    /// Chooses pieces for the host's free slots, each the rarest some free source holds, until
    /// no free source holds anything the host still needs; marks them in flight. A peer whose
    /// upload slots are all taken refuses (429): the host leaves it alone for a moment, and
    /// `retry` says when to try again.
    mutating func fill(_ host: Int, now: Double, picks: inout [Pick], retry: inout Double) {
        guard downloading[host], !sources[host].isEmpty else { return }
        while Int(inFlight[host]) < policy.maxInFlight {
            guard let (piece, slot) = next(for: host, now: now) else { return }
            let node = Int(sources[host][slot].node)
            if node < hostCount && Int(uploads[node]) >= policy.uploadSlots {
                let until = now + policy.busyBackoff
                sources[host][slot].busyUntil = until
                retry = min(retry, until)
                continue
            }
            if let rate = policy.pacedDownload {
                // Pieces start in turn under the cap; the schedule may lag by one chunk.
                guard capFreeAt[host] <= now else {
                    retry = min(retry, capFreeAt[host])
                    return
                }
                let slack = Double(min(256 * 1024, max(4 * 1024, Int(rate / 20)))) / rate
                capFreeAt[host] = max(capFreeAt[host], now - slack) + Double(pieceBytes(piece)) / rate
            }
            fetching[host * words + piece >> 6] |= 1 << UInt64(piece & 63)
            inFlight[host] += 1
            sources[host][slot].inFlight += 1
            if node < hostCount { uploads[node] += 1 }
            if !sources[host][slot].isFallback { primaryInFlight[host] += 1 }
            picks.append(Pick(source: Int32(node), piece: Int32(piece)))
        }
    }

    /// Whether a source can take a request now.
    private func free(_ source: Source, now: Double) -> Bool {
        Int(source.inFlight) < policy.maxPerSource && source.busyUntil <= now
    }

    /// The rarest wanted piece a free source holds, and the source to ask for it.
    private mutating func next(for host: Int, now: Double) -> (piece: Int, slot: Int)? {
        var hasPrimary = false, freeFallback = false, everything = false
        for word in 0..<words { offered[word] = 0 }
        for (slot, source) in sources[host].enumerated() {
            if !source.isFallback { hasPrimary = true }
            guard free(source, now: now) else { continue }
            if source.isFallback {
                freeFallback = true
            } else if source.isCDN {
                everything = true
            } else {
                for word in 0..<words { offered[word] |= known[host][slot * words + word] }
            }
        }
        // Pieces no other source holds may go to a fallback once the download starves.
        let starving = primaryInFlight[host] == 0 && now >= starvingSince[host] + policy.fallbackPatience
        let orphansAllowed = freeFallback && (!hasPrimary || starving)
        let row = host * pieceCount, own = host * words
        var best = -1
        var bestHolders = UInt16.max
        var bestRank = UInt64.max
        for word in 0..<words {
            var wanted = ~(have[own + word] | fetching[own + word])
            if word == words - 1 { wanted &= lastWordMask }
            if wanted == 0 { continue }
            var candidates = everything || orphansAllowed ? wanted : wanted & offered[word]
            while candidates != 0 {
                let piece = word * 64 + candidates.trailingZeroBitCount
                candidates &= candidates - 1
                let count = holders[row + piece]
                if count == 0 && !orphansAllowed { continue }  // nobody but a fallback has it
                if count > 0 && !everything && offered[word] & (1 << UInt64(piece & 63)) == 0 { continue }
                if count > bestHolders { continue }
                let rank = Self.rank(order[host], piece)
                if count < bestHolders || rank < bestRank {
                    best = piece
                    bestHolders = count
                    bestRank = rank
                }
            }
        }
        guard best >= 0 else { return nil }
        return (best, source(for: best, host: host, orphan: bestHolders == 0, now: now))
    }

    /// A peer whose map lists the piece (the least busy; ties spread by the piece), else the
    /// first CDN, else (for a piece nobody else holds) the first free fallback.
    private func source(for piece: Int, host: Int, orphan: Bool, now: Double) -> Int {
        let word = piece >> 6, bit: UInt64 = 1 << UInt64(piece & 63)
        var peer = -1, peerRank = (Int.max, UInt64.max), cdn = -1, fallback = -1
        for (slot, source) in sources[host].enumerated() where free(source, now: now) {
            if source.isFallback {
                if fallback < 0 { fallback = slot }
            } else if source.isCDN {
                if cdn < 0 { cdn = slot }
            } else if known[host][slot * words + word] & bit != 0 {
                let rank = (Int(source.inFlight), Self.rank(order[host] &+ UInt64(slot), piece))
                if rank < peerRank { (peer, peerRank) = (slot, rank) }
            }
        }
        if orphan { return fallback }
        return peer >= 0 ? peer : cdn
    }

    /// This download's tie-break order of `piece` (SplitMix64 of the download's seed).
    private static func rank(_ seed: UInt64, _ piece: Int) -> UInt64 {
        var z = seed &+ UInt64(piece + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
