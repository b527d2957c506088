import Foundation
import Testing
import Transfer
import Wire

/// Expiry, pinned keys and signatures: each refusal with its own error.
@Suite struct ManifestVerifierTests {
    static func signed(by key: Ed25519PrivateKey, expiresAt: Int64 = 2_000) throws -> Manifest {
        let hash = Hex.encode(Digest.sha256(Array("x".utf8)))
        var manifest = Manifest(
            name: "fledge-agent", version: "1.1.0", pieceSize: 1024, createdAt: 1_000, expiresAt: expiresAt,
            files: [ReleaseFile(role: .bin, name: "fledge-agent", size: 1, mode: 0o755, sha256: hash,
                                md5: Hex.encode(Digest.md5(Array("x".utf8))), pieces: [hash])])
        try manifest.sign(with: key)
        return manifest
    }

    @Test func acceptsAGoodManifest() throws {
        let key = try Ed25519PrivateKey.generate()
        let manifest = try Self.signed(by: key)
        let verifier = ManifestVerifier(trusting: [try key.publicKey])
        #expect(try verifier.open(manifest.encoded(), now: 1_500) == manifest)
    }

    @Test func rejectsExpired() throws {
        let key = try Ed25519PrivateKey.generate()
        let manifest = try Self.signed(by: key)
        let verifier = ManifestVerifier(trusting: [try key.publicKey])
        #expect(throws: ManifestError.expired(expiresAt: 2_000, now: 2_000)) { try verifier.open(manifest.encoded(), now: 2_000) }
    }

    @Test func rejectsUnknownKey() throws {
        let key = try Ed25519PrivateKey.generate()
        let manifest = try Self.signed(by: key)
        let verifier = ManifestVerifier(trusting: [try Ed25519PrivateKey.generate().publicKey])
        #expect(throws: ManifestError.unknownKey(manifest.keyId)) { try verifier.open(manifest.encoded(), now: 1_500) }
    }

    @Test func rejectsTamperedManifest() throws {
        let key = try Ed25519PrivateKey.generate()
        var manifest = try Self.signed(by: key)
        manifest.files[0].mode = 0o4755  // setuid: exactly what an attacker would change
        let verifier = ManifestVerifier(trusting: [try key.publicKey])
        #expect(throws: ManifestError.badSignature(keyId: manifest.keyId)) { try verifier.open(manifest.encoded(), now: 1_500) }
    }

    @Test func rejectsGarbageSignature() throws {
        let key = try Ed25519PrivateKey.generate()
        var manifest = try Self.signed(by: key)
        manifest.signature = "!!!notbase64"
        let verifier = ManifestVerifier(trusting: [try key.publicKey])
        #expect(throws: ManifestError.badSignature(keyId: manifest.keyId)) { try verifier.open(manifest.encoded(), now: 1_500) }
    }

    @Test func expiredIsCheckedBeforeTheKey() throws {
        // An expired manifest says "expired" even when also unknown: the more useful message.
        let manifest = try Self.signed(by: try Ed25519PrivateKey.generate())
        let verifier = ManifestVerifier(trusting: [])
        #expect(throws: ManifestError.expired(expiresAt: 2_000, now: 3_000)) { try verifier.open(manifest.encoded(), now: 3_000) }
    }
}
