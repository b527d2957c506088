import Foundation
import FledgeTesting
import Logging
import SystemPackage
import Testing
@testable import Transfer
import Wire

/// Downloading from peers that publish piece maps: each peer is asked only for what it holds,
/// the rarest pieces first, and an origin given as a fallback only for what no peer has.
@Suite struct SwarmDownloadTests {
    let now = ContinuousClock.now

    static func peer(holding count: Int, of release: TestRelease, in directory: TemporaryDirectory) throws -> PieceStore {
        let store = try PieceStore(root: directory.appending("peer-store"))
        let assembly = try store.assembly(for: release.manifest)
        for piece in assembly.missingPieces().prefix(count) { try PieceStoreTests.deliver(piece, of: release, into: assembly) }
        return store
    }

    /// A peer holding the first half, an origin as fallback: the peer gives its half, the
    /// origin only the rest, and every byte is verified.
    @Test func peersFirstAndTheFallbackOnlyForWhatNoPeerHolds() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try PieceStoreTests.release(in: directory)
        let total = release.manifest.totalPieces
        let held = total / 2
        let peer = RangeServer(catalog: PieceStoreCatalog(store: try Self.peer(holding: held, of: release, in: directory)),
                               logger: Logger(label: "peer"))
        let origin = RangeServer(catalog: try DirectoryCatalog(root: release.root), logger: Logger(label: "origin"))
        let peerPort = try await peer.start()
        let originPort = try await origin.start()
        defer { Task { try await peer.shutdown(); try await origin.shutdown() } }

        let target = try PieceStore(root: directory.appending("target")).assembly(for: release.manifest)
        let heldBytes = target.missingPieces().prefix(held).reduce(Int64(0)) { $0 + Int64(target.range(of: $1).count) }
        var options = DownloadOptions()
        options.fallbackPatience = .milliseconds(200)
        let report = try await ReleaseDownloader(
            assembly: target, sources: ["http://127.0.0.1:\(peerPort)"], fallbacks: ["http://127.0.0.1:\(originPort)"],
            options: options
        ).download()
        #expect(target.isComplete)
        let peerBytes = report.bytesBySource["http://127.0.0.1:\(peerPort)"] ?? 0
        let originBytes = report.bytesBySource["http://127.0.0.1:\(originPort)"] ?? 0
        #expect(peerBytes == heldBytes, "everything the peer held came from it")
        #expect(originBytes == release.manifest.totalSize - heldBytes, "the origin sent only the rest")
        #expect(origin.bytesServed == originBytes, "and was asked for nothing else")
        for file in release.manifest.files {
            #expect(try Digest.file(at: target.directory.appending(file.name)).sha256 == file.sha256)
        }
    }

    @Test func rarestPieceFirstAndTheFallbackOnlyWhenAllowed() {
        var queue = PieceQueue((0..<3).map { PieceRef(file: 0, index: $0) }, seed: 1)
        var pool = SourcePool(bases: ["peer-a", "peer-b"], fallbacks: ["origin"], failureLimit: 3)
        pool.setHoldings(0, .pieces(PieceMap(bits: [true, true, false])))
        pool.setHoldings(1, .pieces(PieceMap(bits: [true, false, false])))
        let (first, source) = queue.next(pool: pool, maxPerSource: 4, now: now, fallbacks: false)!
        #expect(first == PieceRef(file: 0, index: 1) && source == 0, "piece 1: one holder, before piece 0's two")
        pool.started(source)
        let (second, _) = queue.next(pool: pool, maxPerSource: 4, now: now, fallbacks: false)!
        #expect(second == PieceRef(file: 0, index: 0))
        #expect(queue.next(pool: pool, maxPerSource: 4, now: now, fallbacks: false) == nil,
                "piece 2: nobody but the fallback holds it; wait")
        let (third, fallback) = queue.next(pool: pool, maxPerSource: 4, now: now + .seconds(2), fallbacks: true)!
        #expect(third == PieceRef(file: 0, index: 2) && fallback == 2, "once the download starves, the origin is asked")
    }

    /// The only peer holding a piece failed it (or was busy): the piece is not stuck behind
    /// that. It goes back to the peer after a pause, before any fallback; once the peer is
    /// gone, to the fallback (when the download starves), or with no fallback, nowhere yet.
    @Test func aPieceWhoseOnlyHolderFailedItIsNotStuck() {
        let piece = PieceRef(file: 0, index: 0)
        for withFallback in [true, false] {
            var queue = PieceQueue([piece], seed: 1)
            var pool = SourcePool(bases: ["peer-a", "peer-b"], fallbacks: withFallback ? ["origin"] : [], failureLimit: 1)
            pool.setHoldings(0, .pieces(PieceMap(bits: [true])))
            pool.setHoldings(1, .pieces(PieceMap(bits: [false])))
            let (taken, source) = queue.next(pool: pool, maxPerSource: 4, now: now, fallbacks: false)!
            #expect(source == 0)
            queue.failed(taken, on: source)
            #expect(queue.next(pool: pool, maxPerSource: 4, now: now, fallbacks: true) == nil, "a pause first")
            let retry = queue.next(pool: pool, maxPerSource: 4, now: now + .seconds(1), fallbacks: true)
            #expect(retry?.1 == 0, "the peer again, not the origin")
            queue.failed(piece, on: 0)
            pool.failed(0, reason: "refused", now: now + .seconds(1))
            pool.failed(0, reason: "refused", now: now + .seconds(20))  // failing for longer than a restart: gone
            #expect(pool.sources[0].removal != nil)
            let last = queue.next(pool: pool, maxPerSource: 4, now: now + .seconds(21), fallbacks: true)
            #expect(last?.1 == (withFallback ? 2 : nil))
        }
    }

    @Test func aPeerOfferedAgainAfterFailingIsRevivedButABannedOneIsNot() {
        var pool = SourcePool(bases: ["a", "b"], failureLimit: 1)
        pool.failed(0, reason: "refused", now: now)
        pool.ban(1, reason: "corrupt")
        #expect(pool.allRemoved)
        #expect(pool.add("a", fallback: false) == 0)
        #expect(pool.add("b/", fallback: false) == nil)
        #expect(pool.add("c", fallback: false) == 2)
        #expect(!pool.allRemoved)
    }
}
