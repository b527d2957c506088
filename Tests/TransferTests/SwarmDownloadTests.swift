@testable import Fetch
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
        options.policy.fallbackPatience = 0.2
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
}
