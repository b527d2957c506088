/// The pieces a download still needs, in the order to ask for them, and for each the sources
/// that could not give it lately, so a retry goes elsewhere first. Bookkeeping only, no I/O.
struct PieceQueue {
    private var pending: [PieceRef]
    /// Sources a piece failed on or was not there yet (503): others are asked first.
    private var tried: [PieceRef: Set<Int>] = [:]
    /// Pieces every usable source was asked for in vain: not asked again before this moment.
    private var notBefore: [PieceRef: ContinuousClock.Instant] = [:]
    /// How long a piece waits after every usable source was asked for it in vain.
    static let roundPause = Duration.milliseconds(250)

    init(_ pieces: [PieceRef]) { pending = pieces }

    var isEmpty: Bool { pending.isEmpty }
    var count: Int { pending.count }

    /// The first piece that can go now, and the source to ask: the first usable source in
    /// preference order with a free slot that has not failed this piece. Nil when none can.
    mutating func next(pool: SourcePool, maxPerSource: Int, now: ContinuousClock.Instant) -> (PieceRef, Int)? {
        // No source has a free slot: nothing can go, whatever the piece.
        guard pool.pick(maxPerSource: maxPerSource, excluding: [], now: now) != nil else { return nil }
        var index = 0
        while index < pending.count {
            let piece = pending[index]
            if let wait = notBefore[piece], wait > now {
                index += 1
                continue
            }
            let excluded = tried[piece] ?? []
            if !pool.hasUsable(excluding: excluded) {
                // Every usable source was asked: start this piece's round over, after a pause.
                tried[piece] = nil
                notBefore[piece] = now + Self.roundPause
                index += 1
                continue
            }
            if let source = pool.pick(maxPerSource: maxPerSource, excluding: excluded, now: now) {
                pending.remove(at: index)
                notBefore[piece] = nil
                return (piece, source)
            }
            index += 1
        }
        return nil
    }

    /// Back to the front, untouched: it was taken but could not start (rate cap).
    mutating func putBack(_ piece: PieceRef) { pending.insert(piece, at: 0) }

    /// The piece failed on `source`: retried first, elsewhere if possible.
    mutating func failed(_ piece: PieceRef, on source: Int) {
        tried[piece, default: []].insert(source)
        pending.insert(piece, at: 0)
    }

    /// `source` does not hold the piece yet: others first, and it goes to the back.
    mutating func unavailable(_ piece: PieceRef, at source: Int) {
        tried[piece, default: []].insert(source)
        pending.append(piece)
    }

    mutating func verified(_ piece: PieceRef) { tried[piece] = nil }

    /// The earliest moment a paused piece may be asked for again.
    var nextReady: ContinuousClock.Instant? { notBefore.values.min() }
}
