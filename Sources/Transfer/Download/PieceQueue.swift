/// The pieces a download still needs and which to ask for next: the rarest among its sources
/// first (the fewest sources hold it, so it spreads before a holder leaves), ties in an order
/// of this download's own, so hosts starting together fetch different pieces and have
/// something to give each other at once. Remembers, per piece, the sources that could not give
/// it lately, so a retry goes elsewhere first. Bookkeeping only, no I/O.
struct PieceQueue {
    private var pending: [PieceRef]
    /// The piece's index over the whole release (files in manifest order), as piece maps count.
    private let fileOffsets: [Int]
    /// This download's tie-break order.
    private var rank: [PieceRef: UInt64] = [:]
    /// Sources a piece failed on or was not there yet (503): others are asked first.
    private var tried: [PieceRef: Set<Int>] = [:]
    /// Pieces every usable source was asked for in vain: not asked again before this moment.
    private var notBefore: [PieceRef: ContinuousClock.Instant] = [:]
    /// How long a piece waits after every usable source was asked for it in vain.
    static let roundPause = Duration.milliseconds(250)

    /// `seed` fixes the tie-break order (tests); by default each download draws its own.
    init(_ pieces: [PieceRef], fileOffsets: [Int] = [0], seed: UInt64 = .random(in: .min ... .max)) {
        pending = pieces
        self.fileOffsets = fileOffsets
        var state = seed
        for piece in pieces {
            // SplitMix64: cheap, and enough to shuffle ties.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            rank[piece] = z ^ (z >> 31)
        }
    }

    var isEmpty: Bool { pending.isEmpty }
    var count: Int { pending.count }

    func globalIndex(_ piece: PieceRef) -> Int { fileOffsets[piece.file] + piece.index }

    /// The piece to ask for now and the source to ask: the rarest piece some source with a free
    /// slot holds and has not failed lately. A fallback source is asked only when `fallbacks`
    /// allows (the caller's download is starving) and only for a piece no other source can
    /// give, or once no other source is left. Nil when nothing can go now.
    mutating func next(
        pool: SourcePool, maxPerSource: Int, now: ContinuousClock.Instant, fallbacks allowed: Bool = true
    ) -> (PieceRef, Int)? {
        // No source has a free slot: nothing can go, whatever the piece.
        guard pool.hasFreeSlot(maxPerSource: maxPerSource, now: now) else { return nil }
        let holders = pending.map { pool.holderCount(of: globalIndex($0)) }
        let order = pending.indices.sorted { a, b in
            holders[a] != holders[b] ? holders[a] < holders[b] : rank[pending[a], default: 0] < rank[pending[b], default: 0]
        }
        var chosen: (position: Int, source: Int)?
        for position in order {
            let piece = pending[position]
            if let wait = notBefore[piece], wait > now { continue }
            let index = globalIndex(piece)
            let excluded = tried[piece] ?? []
            let available = pool.holderCount(of: index, excluding: excluded)
            if !pool.couldGive(index, excluding: excluded) || (available == 0 && pool.holderCount(of: index) > 0) {
                // Every source holding it was asked lately (busy, not there, failed): start its
                // round over after a pause. Peers that hold it come before any fallback.
                tried[piece] = nil
                notBefore[piece] = now + Self.roundPause
                continue
            }
            // Nobody but a fallback holds it: the fallback, if the caller allows.
            let fallbacks = !pool.hasUsablePrimary || (allowed && available == 0)
            if let source = pool.pick(
                piece: index, maxPerSource: maxPerSource, excluding: excluded, fallbacks: fallbacks, now: now)
            {
                chosen = (position, source)
                break
            }
        }
        guard let chosen else { return nil }
        let piece = pending.remove(at: chosen.position)
        notBefore[piece] = nil
        return (piece, chosen.source)
    }

    /// Back in the queue, untouched: it was taken but could not start (rate cap).
    mutating func putBack(_ piece: PieceRef) { pending.insert(piece, at: 0) }

    /// The piece failed on `source`: retried, elsewhere if possible.
    mutating func failed(_ piece: PieceRef, on source: Int) {
        tried[piece, default: []].insert(source)
        pending.insert(piece, at: 0)
    }

    /// `source` does not hold the piece yet: others first.
    mutating func unavailable(_ piece: PieceRef, at source: Int) {
        tried[piece, default: []].insert(source)
        pending.append(piece)
    }

    mutating func verified(_ piece: PieceRef) { tried[piece] = nil }

    /// The earliest moment a paused piece may be asked for again.
    var nextReady: ContinuousClock.Instant? { notBefore.values.min() }
}
