import Foundation
import FledgeTesting
import Logging
import Swarm
import SystemPackage
import Testing
@testable import Transfer
import Wire

/// The piece store: resume from verified pieces only, final names only for whole verified
/// files, and serving the verified pieces of a release still being assembled.
@Suite struct PieceStoreTests {
    /// A release of two files published into `directory/origin`.
    static func release(in directory: TemporaryDirectory) throws -> TestRelease {
        try TestRelease.publish(in: directory, binarySize: 40_000, pieceSize: 4096)
    }

    /// Copies a piece's bytes from the origin into the assembly and records it, as the downloader does.
    static func deliver(_ piece: PieceRef, of release: TestRelease, into assembly: ReleaseAssembly) throws {
        let file = release.manifest.files[piece.file]
        let origin = release.root.appending(release.manifest.name).appending(release.manifest.version).appending(file.name)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: origin.string)))
        let range = assembly.range(of: piece)
        let descriptor = try #require(assembly.partDescriptor(for: piece))
        let slice = bytes[Int(range.lowerBound)..<Int(range.upperBound)]
        _ = try descriptor.writeAll(toAbsoluteOffset: range.lowerBound, slice)
        #expect(try assembly.accept(piece, sha256: Hex.encode(Digest.sha256(Array(slice)))))
    }

    @Test func resumesFromVerifiedPiecesAndRehashesThem() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try Self.release(in: directory)
        let storeRoot = directory.appending("store")
        var first: ReleaseAssembly? = try PieceStore(root: storeRoot).assembly(for: release.manifest)
        let all = first!.missingPieces()
        #expect(all.count == release.manifest.totalPieces)
        for piece in all.prefix(6) { try Self.deliver(piece, of: release, into: first!) }
        first = nil  // the process "dies"

        // Corrupt one recorded piece on disk: it must not survive the resume.
        let part = storeRoot.appending("fledge-agent/1.1.0/.partial/fledge-agent.part")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: part.string))
        try handle.seek(toOffset: 4096 * 2 + 10)
        try handle.write(contentsOf: Data([0xFF, 0x00, 0xFF]))
        try handle.close()

        let resumed = try PieceStore(root: storeRoot).assembly(for: release.manifest)
        let missing = resumed.missingPieces()
        #expect(missing.count == all.count - 5)
        #expect(missing.contains(PieceRef(file: 0, index: 2)))
        #expect(!missing.contains(PieceRef(file: 0, index: 1)))
        #expect(resumed.verifiedBytes == 5 * 4096)
    }

    @Test func finalNamesOnlyWhenWholeAndVerified() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try Self.release(in: directory)
        let store = try PieceStore(root: directory.appending("store"))
        let assembly = try store.assembly(for: release.manifest)
        let pieces = assembly.missingPieces()
        for piece in pieces.dropLast() { try Self.deliver(piece, of: release, into: assembly) }
        #expect(throws: TransferError.self) { try assembly.finalize() }
        let releaseDirectory = store.releaseDirectory(name: "fledge-agent", version: "1.1.0")
        let visible = try FileManager.default.contentsOfDirectory(atPath: releaseDirectory.string).filter { !$0.hasPrefix(".") }
        #expect(visible.isEmpty, "nothing partial has a final name: \(visible)")

        try Self.deliver(pieces.last!, of: release, into: assembly)
        try assembly.finalize()
        #expect(assembly.isComplete)
        for file in release.manifest.files {
            let path = releaseDirectory.appending(file.name)
            #expect(try Digest.file(at: path).sha256 == file.sha256)
            let mode = try FileManager.default.attributesOfItem(atPath: path.string)[.posixPermissions] as? Int
            #expect(mode == file.mode)
        }
        #expect(FileManager.default.fileExists(atPath: releaseDirectory.appending("manifest.json").string))
        #expect(!FileManager.default.fileExists(atPath: releaseDirectory.appending(".partial").string))
        // Reopening a complete release needs nothing.
        #expect(try PieceStore(root: directory.appending("store")).assembly(for: release.manifest).missingPieces().isEmpty)
    }

    @Test func aDifferentBuildOfTheSameVersionIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try Self.release(in: directory)
        let store = try PieceStore(root: directory.appending("store"))
        let assembly = try store.assembly(for: release.manifest)
        for piece in assembly.missingPieces() { try Self.deliver(piece, of: release, into: assembly) }
        try assembly.finalize()
        var other = release.manifest
        other.files[0].mode = 0o700
        try other.sign(with: release.key)
        #expect(throws: TransferError.self) { try PieceStore(root: directory.appending("store")).assembly(for: other) }
    }

    /// A re-signed manifest (new expiry, new signatures, every digest the same) is the same
    /// release: a partial download resumes under it, a complete one keeps its files, and the
    /// newer manifest is kept in both, never replaced by an older one.
    @Test func aReSignedManifestIsTheSameRelease() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try Self.release(in: directory)
        let storeRoot = directory.appending("store")
        var resigned = release.manifest
        resigned.expiresAt += 3600
        try resigned.sign(with: release.key)
        #expect(resigned.sameContent(as: release.manifest) && resigned != release.manifest)

        let first = try PieceStore(root: storeRoot).assembly(for: release.manifest)
        let pieces = first.missingPieces()
        for piece in pieces.prefix(4) { try Self.deliver(piece, of: release, into: first) }
        let resumed = try PieceStore(root: storeRoot).assembly(for: resigned)
        #expect(resumed.missingPieces().count == pieces.count - 4, "the verified pieces count under the new manifest")
        let partial = try Manifest.decode(Files.read(storeRoot.appending("fledge-agent/1.1.0/.partial/manifest.json")))
        #expect(partial == resigned)

        for piece in resumed.missingPieces() { try Self.deliver(piece, of: release, into: resumed) }
        try resumed.finalize()
        var again = resigned
        again.expiresAt += 3600
        try again.sign(with: release.key)
        #expect(try PieceStore(root: storeRoot).assembly(for: again).missingPieces().isEmpty)
        #expect(try Manifest.decode(Files.read(storeRoot.appending("fledge-agent/1.1.0/manifest.json"))) == again)
        // An older signing (a stale mirror still serves it) opens the release but never replaces
        // the newer one.
        #expect(try PieceStore(root: storeRoot).assembly(for: resigned).missingPieces().isEmpty)
        #expect(try Manifest.decode(Files.read(storeRoot.appending("fledge-agent/1.1.0/manifest.json"))) == again)
    }

    /// A full disk shows up before any byte is fetched, as a disk-full error.
    /// Needs root, to mount a 1 MiB tmpfs (CI runs as root).
    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func fullDiskIsAClearError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory, binarySize: 3 << 20, pieceSize: 65536)
        let mount = directory.appending("small")
        try FileManager.default.createDirectory(atPath: mount.string, withIntermediateDirectories: true)
        let mounted = try ChildProcess.runBlocking("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount.string])
        try #require(mounted.exit == .exited(0), "needs root to mount a small tmpfs")
        defer { _ = try? ChildProcess.runBlocking("/bin/umount", [mount.string]) }
        do {
            _ = try PieceStore(root: mount.appending("store")).assembly(for: release.manifest)
            Issue.record("a 3 MiB release fit in 1 MiB")
        } catch {
            guard case .diskFull = error else { Issue.record("expected diskFull, got \(error)"); return }
            #expect(error.description.contains("no space left"))
        }
    }

    /// A peer serves the verified pieces of a release it is still assembling, and nothing else.
    @Test func servesVerifiedPiecesWhileAssembling() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try Self.release(in: directory)
        let store = try PieceStore(root: directory.appending("store"))
        let assembly = try store.assembly(for: release.manifest)
        try Self.deliver(PieceRef(file: 0, index: 1), of: release, into: assembly)
        try Self.deliver(PieceRef(file: 0, index: 2), of: release, into: assembly)
        let origin = try [UInt8](Data(contentsOf: URL(fileURLWithPath: release.inputs["bin"]!.string)))

        let server = RangeServer(catalog: PieceStoreCatalog(store: store), logger: Logger(label: "test"))
        let port = try await server.start()
        defer { Task { try await server.shutdown() } }
        let path = "/fledge-agent/1.1.0/fledge-agent"
        let inside = try await LoopbackHTTP.request(port: port, target: path, headers: ["Range": "bytes=4096-12287"])
        #expect(inside.status == 206)
        #expect(inside.body == Array(origin[4096...12287]))
        let across = try await LoopbackHTTP.request(port: port, target: path, headers: ["Range": "bytes=0-5000"])
        #expect(across.status == 503)
        #expect(across.header("retry-after") == "1")
        #expect(try await LoopbackHTTP.request(port: port, target: path).status == 503, "not whole yet")
        #expect(try await LoopbackHTTP.request(port: port, target: "/fledge-agent/1.1.0/.partial/fledge-agent.part").status == 403)
        #expect(try await LoopbackHTTP.request(port: port, target: "/fledge-agent/1.1.0/other").status == 404)
        let manifest = try await LoopbackHTTP.request(port: port, target: "/fledge-agent/1.1.0/manifest.json")
        #expect(manifest.status == 200)
        #expect(try Manifest.decode(manifest.body) == release.manifest)
        // Its piece map: what peers may ask it for.
        let total = release.manifest.totalPieces
        let map = try await LoopbackHTTP.request(port: port, target: PieceAvailability.path(name: "fledge-agent", version: "1.1.0"))
        #expect(map.status == 200)
        #expect(map.body == Array(("011" + String(repeating: "0", count: total - 3) + "\n").utf8))
        #expect(PieceSet(text: map.body, capacity: total)?.count == 2)
        let none = try await LoopbackHTTP.request(port: port, target: PieceAvailability.path(name: "fledge-agent", version: "9.9.9"))
        #expect(none.status == 200 && PieceSet(text: none.body, capacity: 5) == PieceSet(capacity: 5),
                "nothing of it yet: an empty map")
        #expect(try await LoopbackHTTP.request(port: port, target: "/_fledge/pieces/fledge-agent/..").status == 403)

        for piece in assembly.missingPieces() { try Self.deliver(piece, of: release, into: assembly) }
        try assembly.finalize()
        let whole = try await LoopbackHTTP.request(port: port, target: path)
        #expect(whole.status == 200)
        #expect(whole.body == origin)
        let complete = try await LoopbackHTTP.request(port: port, target: PieceAvailability.path(name: "fledge-agent", version: "1.1.0"))
        #expect(PieceSet(text: complete.body, capacity: release.manifest.totalPieces)?.isFull == true)
    }
}
