import Foundation
import Testing
import Wire

/// Each structural rejection of `Manifest.decode` has its own error.
@Suite struct ManifestDecodingTests {
    static let hash = String(repeating: "ab", count: 32)
    static let md5 = String(repeating: "cd", count: 16)

    static func sample() -> Manifest {
        Manifest(
            name: "fledge-agent", version: "1.1.0", pieceSize: 4, createdAt: 100, expiresAt: 200,
            files: [
                ReleaseFile(role: .bin, name: "fledge-agent", size: 10, mode: 0o755, sha256: hash, md5: md5, pieces: [hash, hash, hash]),
                ReleaseFile(role: .cfg, name: "fledge-agent.json", size: 0, mode: 0o644, sha256: hash, md5: md5, pieces: []),
            ],
            keyId: "0011223344556677", signature: "c2lnbmF0dXJl")
    }

    /// The sample as a JSON object, changed by `edit`, back to bytes.
    static func mutated(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        var object = try #require(try JSONSerialization.jsonObject(with: sample().encoded()) as? [String: Any])
        edit(&object)
        return try JSONSerialization.data(withJSONObject: object)
    }

    static func editFile(_ object: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var files = object["files"] as! [[String: Any]]
        edit(&files[0])
        object["files"] = files
    }

    @Test func roundTrips() throws {
        let decoded = try Manifest.decode(Self.sample().encoded())
        #expect(decoded == Self.sample())
        #expect(decoded.totalPieces == 3)
        #expect(decoded.totalSize == 10)
    }

    @Test func encodingIsStable() {
        #expect(Self.sample().encoded() == Self.sample().encoded())
        #expect(Self.sample().canonicalBytes == Self.sample().canonicalBytes)
    }

    @Test func canonicalBytesCoverEverySignedField() {
        let base = Self.sample()
        var changed = base
        changed.files[0].mode = 0o700
        #expect(changed.canonicalBytes != base.canonicalBytes)
        changed = base
        changed.expiresAt += 1
        #expect(changed.canonicalBytes != base.canonicalBytes)
        changed = base
        changed.files[0].pieces[2] = String(repeating: "00", count: 32)
        #expect(changed.canonicalBytes != base.canonicalBytes)
        changed = base
        changed.signature = "other"
        #expect(changed.canonicalBytes == base.canonicalBytes, "the signature is not part of what it signs")
    }

    @Test func rejectsMalformedJSON() {
        #expect(throws: ManifestError.self) { try Manifest.decode(Array("{\"format\":1,".utf8)) }
        do {
            _ = try Manifest.decode(Array("not json".utf8))
            Issue.record("accepted garbage")
        } catch {
            guard case .malformedJSON = error else { Issue.record("wrong error \(error)"); return }
        }
    }

    @Test func rejectsUnknownFormat() throws {
        let data = try Self.mutated { $0["format"] = 2 }
        #expect(throws: ManifestError.unsupportedFormat(2)) { try Manifest.decode(data) }
    }

    @Test func rejectsMissingFormat() throws {
        let data = try Self.mutated { $0["format"] = nil }
        #expect(throws: ManifestError.missingField("format")) { try Manifest.decode(data) }
    }

    @Test(arguments: ["name", "version", "pieceSize", "expiresAt", "files", "signature", "keyId"])
    func rejectsMissingField(_ field: String) throws {
        let data = try Self.mutated { $0[field] = nil }
        #expect(throws: ManifestError.missingField(field)) { try Manifest.decode(data) }
    }

    @Test func rejectsMissingFieldOfAFile() throws {
        let data = try Self.mutated { Self.editFile(&$0) { $0["sha256"] = nil } }
        #expect(throws: ManifestError.missingField("files[0].sha256")) { try Manifest.decode(data) }
    }

    @Test func rejectsNegativeSize() throws {
        let data = try Self.mutated { Self.editFile(&$0) { $0["size"] = -1 } }
        #expect(throws: ManifestError.negativeSize(file: "fledge-agent", size: -1)) { try Manifest.decode(data) }
    }

    @Test func rejectsPiecesThatDoNotCoverTheSize() throws {
        let short = try Self.mutated { Self.editFile(&$0) { $0["pieces"] = [Self.hash, Self.hash] } }
        #expect(throws: ManifestError.piecesDoNotCoverSize(file: "fledge-agent", expected: 3, actual: 2)) {
            try Manifest.decode(short)
        }
        let long = try Self.mutated { Self.editFile(&$0) { $0["size"] = 4 } }
        #expect(throws: ManifestError.piecesDoNotCoverSize(file: "fledge-agent", expected: 1, actual: 3)) {
            try Manifest.decode(long)
        }
    }

    @Test func rejectsBadHashes() throws {
        let data = try Self.mutated { Self.editFile(&$0) { $0["sha256"] = "ABCD" } }
        #expect(throws: ManifestError.invalidField("files[0].sha256", reason: "must be 64 lowercase hex digits")) {
            try Manifest.decode(data)
        }
    }

    @Test(arguments: ["../etc", ".hidden", "a/b", "", "x\ny"])
    func rejectsUnsafeFileNames(_ name: String) throws {
        let data = try Self.mutated { Self.editFile(&$0) { $0["name"] = name } }
        #expect(throws: ManifestError.self) { try Manifest.decode(data) }
    }

    @Test func rejectsTwoFilesOfOneRole() throws {
        let data = try Self.mutated { object in
            var files = object["files"] as! [[String: Any]]
            files[1]["role"] = "bin"
            object["files"] = files
        }
        #expect(throws: ManifestError.self) { try Manifest.decode(data) }
    }

    @Test func rejectsNonPositivePieceSize() throws {
        let data = try Self.mutated { $0["pieceSize"] = 0 }
        #expect(throws: ManifestError.invalidField("pieceSize", reason: "must be positive, is 0")) { try Manifest.decode(data) }
    }

    @Test func errorsReadWell() {
        #expect(ManifestError.expired(expiresAt: 5, now: 9).description.contains("fledge-seeder resign"))
        #expect(ManifestError.unsupportedFormat(3).description.contains("format 3"))
    }

    @Test func pieceRanges() {
        let file = Self.sample().files[0]
        #expect(file.pieceRange(0, pieceSize: 4) == 0..<4)
        #expect(file.pieceRange(2, pieceSize: 4) == 8..<10)
        #expect(ReleaseFile.pieceCount(size: 0, pieceSize: 4) == 0)
        #expect(ReleaseFile.pieceCount(size: 8, pieceSize: 4) == 2)
        #expect(ReleaseFile.pieceCount(size: 9, pieceSize: 4) == 3)
    }
}
