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

    /// Two of three pinned keys: signatures count once per distinct pinned key, unpinned keys
    /// and a key signing twice add nothing, and a bad cosignature is refused outright.
    @Test func aThresholdCountsDistinctPinnedKeys() throws {
        let keys = try (0..<4).map { _ in try Ed25519PrivateKey.generate() }
        let verifier = ManifestVerifier(trusting: try keys.prefix(3).map { try $0.publicKey }, threshold: 2)
        func signed(_ signers: [Ed25519PrivateKey]) throws -> Manifest {
            var manifest = try Self.signed(by: signers[0])
            try manifest.sign(with: signers)
            return manifest
        }
        #expect(throws: ManifestError.tooFewSignatures(valid: 1, threshold: 2)) { try verifier.verify(signed([keys[0]]), now: 1_500) }
        #expect(throws: ManifestError.tooFewSignatures(valid: 1, threshold: 2)) { try verifier.verify(signed([keys[0], keys[0]]), now: 1_500) }
        #expect(throws: ManifestError.tooFewSignatures(valid: 1, threshold: 2)) { try verifier.verify(signed([keys[3], keys[1]]), now: 1_500) }
        try verifier.verify(signed([keys[1], keys[2]]), now: 1_500)  // the first key retired
        try verifier.verify(signed([keys[3], keys[0], keys[2]]), now: 1_500)  // a new key beside two pinned
        var forged = try signed([keys[0], keys[1]])
        forged.cosignatures![0].signature = forged.signature
        #expect(throws: ManifestError.self) { try verifier.verify(forged, now: 1_500) }
        // Signatures do not change what the release is.
        #expect(try signed([keys[1], keys[2]]).sameContent(as: signed([keys[0]])))
    }
}
