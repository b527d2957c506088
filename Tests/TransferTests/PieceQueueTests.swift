import Testing
@testable import Transfer

/// Which piece goes next, from which source: preference order, per-source slots, retries
/// elsewhere, bans, backoff and "not here yet".
@Suite struct PieceQueueTests {
    let now = ContinuousClock.now
    func pieces(_ n: Int) -> [PieceRef] { (0..<n).map { PieceRef(file: 0, index: $0) } }

    @Test func fillsTheFirstSourceThenTheNext() {
        var queue = PieceQueue(pieces(5))
        var pool = SourcePool(bases: ["http://a", "http://b/"], failureLimit: 3)
        var sources: [Int] = []
        while let (_, source) = queue.next(pool: pool, maxPerSource: 2, now: now) {
            pool.started(source)
            sources.append(source)
        }
        #expect(sources == [0, 0, 1, 1])
        #expect(queue.count == 1)
        #expect(pool.sources[1].base == "http://b", "trailing slash dropped")
    }

    @Test func aFailedPieceGoesElsewhereFirst() {
        var queue = PieceQueue(pieces(1))
        var pool = SourcePool(bases: ["a", "b"], failureLimit: 3)
        let (piece, first) = queue.next(pool: pool, maxPerSource: 4, now: now)!
        #expect(first == 0)
        queue.failed(piece, on: first)
        pool.failed(first, reason: "reset", now: now)
        let (again, second) = queue.next(pool: pool, maxPerSource: 4, now: now)!
        #expect(again == piece)
        #expect(second == 1)
    }

    @Test func repeatedFailuresDropASourceAndABadPieceBansIt() {
        var pool = SourcePool(bases: ["a", "b"], failureLimit: 2)
        pool.failed(0, reason: "refused", now: now)
        #expect(!pool.allRemoved)
        #expect(pool.pick(maxPerSource: 4, excluding: [], now: now) == 1, "a backs off")
        #expect(pool.pick(maxPerSource: 4, excluding: [], now: now + .seconds(1)) == 0, "then is tried again")
        pool.failed(0, reason: "refused", now: now)
        pool.ban(1, reason: "corrupt")
        #expect(pool.allRemoved)
        #expect(pool.failures.map(\.reason) == ["refused (2 failures in a row)", "banned: corrupt"])
    }

    @Test func deliveringResetsFailures() {
        var pool = SourcePool(bases: ["a"], failureLimit: 2)
        pool.failed(0, reason: "reset", now: now)
        pool.delivered(0, bytes: 10)
        pool.failed(0, reason: "reset", now: now)
        #expect(!pool.allRemoved)
        #expect(pool.bytesBySource == ["a": 10])
    }

    @Test func pieceNobodyHasYetPausesThenRetries() {
        var queue = PieceQueue(pieces(1))
        let pool = SourcePool(bases: ["a"], failureLimit: 3)
        let (piece, source) = queue.next(pool: pool, maxPerSource: 4, now: now)!
        queue.unavailable(piece, at: source)
        #expect(queue.next(pool: pool, maxPerSource: 4, now: now) == nil, "asked everyone: pause")
        #expect(queue.nextReady != nil)
        #expect(queue.next(pool: pool, maxPerSource: 4, now: now + PieceQueue.roundPause)?.0 == piece)
    }

    @Test func aSourceThatNeverHasThePiecesIsDroppedInTime() {
        var pool = SourcePool(bases: ["peer"], failureLimit: 3)
        pool.unavailable(0, now: now, patience: .seconds(30))
        pool.unavailable(0, now: now + .seconds(10), patience: .seconds(30))
        #expect(!pool.allRemoved)
        pool.unavailable(0, now: now + .seconds(30), patience: .seconds(30))
        #expect(pool.allRemoved)
    }
}
