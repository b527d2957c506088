import Foundation
import FledgeTesting
import SystemPackage
import Testing
import Transfer
import Wire

/// Known vectors for the OpenSSL wrappers.
@Suite struct DigestTests {
    @Test func sha256Vectors() {
        #expect(Hex.encode(Digest.sha256([UInt8]())) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Hex.encode(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(Digest.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func md5Vectors() {
        #expect(Hex.encode(Digest.md5([UInt8]())) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(Hex.encode(Digest.md5(Array("abc".utf8))) == "900150983cd24fb0d6963f7d28e17f72")
    }

    @Test func streamingEqualsOneShot() {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let hasher = Hasher(.sha256)
        for chunk in stride(from: 0, to: bytes.count, by: 777) {
            hasher.update(Array(bytes[chunk..<min(chunk + 777, bytes.count)]))
        }
        #expect(hasher.finalize() == Digest.sha256(bytes))
        // A hasher starts over after finalize.
        hasher.update(Array("abc".utf8))
        #expect(hasher.finalizeHex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func fileDigestMatchesMemory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.randomFile("blob", size: 3_000_001)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path.string)))
        let digest = try Digest.file(at: path)
        #expect(digest.size == 3_000_001)
        #expect(digest.sha256 == Hex.encode(Digest.sha256(bytes)))
        #expect(digest.md5 == Hex.encode(Digest.md5(bytes)))
    }

    @Test func pieceHasherCoversEveryByte() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.randomFile("blob", size: 10_000)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path.string)))
        let result = try PieceHasher.hash(path, pieceSize: 4096)
        #expect(result.pieces.count == 3)
        #expect(result.pieces[2] == Hex.encode(Digest.sha256(Array(bytes[8192...]))))
        #expect(result.sha256 == Hex.encode(Digest.sha256(bytes)))
        let exact = try directory.randomFile("exact", size: 8192)
        #expect(try PieceHasher.hash(exact, pieceSize: 4096).pieces.count == 2)
    }

    @Test func missingFileIsAClearError() {
        do {
            _ = try Digest.file(at: "/nonexistent/fledge")
            Issue.record("hashed a missing file")
        } catch {
            #expect(error.description.contains("/nonexistent/fledge"))
        }
    }
}

/// Ed25519 on OpenSSL: RFC 8032 vectors, PEM round trips, tamper detection.
@Suite struct Ed25519Tests {
    // RFC 8032 section 7.1, test 1 (empty message).
    static let secret = Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!
    static let publicKey = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    static let signature = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"

    @Test func rfc8032Vector() throws {
        let key = try Ed25519PrivateKey(rawRepresentation: Self.secret)
        #expect(Hex.encode(try key.publicKey.rawRepresentation) == Self.publicKey)
        let signature = try key.signature(for: [])
        #expect(Hex.encode(signature) == Self.signature)
        #expect(try key.publicKey.isValidSignature(signature, for: []))
    }

    @Test func verifyRejectsTampering() throws {
        let key = try Ed25519PrivateKey.generate()
        let message = Array("release 1.1.0".utf8)
        var signature = try key.signature(for: message)
        #expect(try key.publicKey.isValidSignature(signature, for: message))
        #expect(try !key.publicKey.isValidSignature(signature, for: Array("release 1.1.1".utf8)))
        signature[0] ^= 1
        #expect(try !key.publicKey.isValidSignature(signature, for: message))
        #expect(try !key.publicKey.isValidSignature([1, 2, 3], for: message))
        let other = try Ed25519PrivateKey.generate()
        #expect(try !other.publicKey.isValidSignature(try key.signature(for: message), for: message))
    }

    @Test func pemRoundTrip() throws {
        let key = try Ed25519PrivateKey.generate()
        let pem = try key.pemRepresentation
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try Ed25519PrivateKey(pem: pem).rawRepresentation == key.rawRepresentation)
        let publicPEM = try key.publicKey.pemRepresentation
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        #expect(try Ed25519PublicKey(pem: publicPEM) == key.publicKey)
        #expect(try key.publicKey.keyID.count == 16)
    }

    @Test func badKeysAreClearErrors() {
        #expect(throws: TransferError.self) { try Ed25519PrivateKey(pem: "garbage") }
        #expect(throws: TransferError.self) { try Ed25519PublicKey(rawRepresentation: [1, 2, 3]) }
        // A private key where a public one is expected.
        #expect(throws: TransferError.self) { try Ed25519PublicKey(pem: try Ed25519PrivateKey.generate().pemRepresentation) }
    }
}
