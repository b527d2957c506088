#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Wire
import COpenSSL

/// An Ed25519 signing key. Held as its 32 raw bytes; OpenSSL objects live only inside calls.
public struct Ed25519PrivateKey: Sendable {
    public let rawRepresentation: [UInt8]

    /// A fresh key from OpenSSL's CSPRNG.
    public static func generate() throws(TransferError) -> Ed25519PrivateKey {
        guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nil) else { throw OpenSSL.error("EVP_PKEY_CTX_new_id") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_keygen(ctx, &pkey) == 1, let pkey else {
            throw OpenSSL.error("EVP_PKEY_keygen")
        }
        defer { EVP_PKEY_free(pkey) }
        return Ed25519PrivateKey(unchecked: try OpenSSL.rawKey(pkey, isPrivate: true))
    }

    public init(rawRepresentation: [UInt8]) throws(TransferError) {
        guard rawRepresentation.count == 32 else { throw .invalidKey("an Ed25519 private key is 32 bytes, got \(rawRepresentation.count)") }
        self.rawRepresentation = rawRepresentation
    }

    private init(unchecked raw: [UInt8]) { rawRepresentation = raw }

    /// Reads a PKCS#8 PEM key, as written by `pemRepresentation` or `openssl genpkey -algorithm ed25519`.
    public init(pem: String) throws(TransferError) {
        let pkey = try OpenSSL.readPEM(pem, isPrivate: true)
        defer { EVP_PKEY_free(pkey) }
        rawRepresentation = try OpenSSL.rawKey(pkey, isPrivate: true)
    }

    public var pemRepresentation: String {
        get throws(TransferError) {
            let pkey = try OpenSSL.pkey(raw: rawRepresentation, isPrivate: true)
            defer { EVP_PKEY_free(pkey) }
            return try OpenSSL.writePEM(pkey, isPrivate: true)
        }
    }

    public var publicKey: Ed25519PublicKey {
        get throws(TransferError) {
            let pkey = try OpenSSL.pkey(raw: rawRepresentation, isPrivate: true)
            defer { EVP_PKEY_free(pkey) }
            return try Ed25519PublicKey(rawRepresentation: OpenSSL.rawKey(pkey, isPrivate: false))
        }
    }

    public func signature(for message: [UInt8]) throws(TransferError) -> [UInt8] {
        let pkey = try OpenSSL.pkey(raw: rawRepresentation, isPrivate: true)
        defer { EVP_PKEY_free(pkey) }
        guard let md = EVP_MD_CTX_new() else { throw OpenSSL.error("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestSignInit(md, nil, nil, nil, pkey) == 1 else { throw OpenSSL.error("EVP_DigestSignInit") }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        guard EVP_DigestSign(md, &signature, &length, message, message.count) == 1 else {
            throw OpenSSL.error("EVP_DigestSign")
        }
        return Array(signature.prefix(length))
    }
}

/// An Ed25519 verification key, as pinned on agents and named in manifests by `keyID`.
public struct Ed25519PublicKey: Sendable, Hashable {
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: [UInt8]) throws(TransferError) {
        guard rawRepresentation.count == 32 else { throw .invalidKey("an Ed25519 public key is 32 bytes, got \(rawRepresentation.count)") }
        self.rawRepresentation = rawRepresentation
    }

    /// Reads a SubjectPublicKeyInfo PEM key (`openssl pkey -pubout`).
    public init(pem: String) throws(TransferError) {
        let pkey = try OpenSSL.readPEM(pem, isPrivate: false)
        defer { EVP_PKEY_free(pkey) }
        rawRepresentation = try OpenSSL.rawKey(pkey, isPrivate: false)
    }

    public var pemRepresentation: String {
        get throws(TransferError) {
            let pkey = try OpenSSL.pkey(raw: rawRepresentation, isPrivate: false)
            defer { EVP_PKEY_free(pkey) }
            return try OpenSSL.writePEM(pkey, isPrivate: false)
        }
    }

    /// The first 8 bytes of the key's SHA-256, in hex: short, stable, and says which key signed.
    public var keyID: String { Hex.encode(Digest.sha256(rawRepresentation).prefix(8)) }

    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let pkey = try? OpenSSL.pkey(raw: rawRepresentation, isPrivate: false) else { return false }
        defer { EVP_PKEY_free(pkey) }
        guard let md = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestVerifyInit(md, nil, nil, nil, pkey) == 1 else { return false }
        return EVP_DigestVerify(md, signature, signature.count, message, message.count) == 1
    }
}

/// The OpenSSL plumbing shared by the key types. Every EVP_PKEY it returns is the caller's to free.
enum OpenSSL {
    static func error(_ call: String) -> TransferError {
        let code = ERR_get_error()
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return .crypto("\(call) failed: \(text)")
    }

    static func pkey(raw: [UInt8], isPrivate: Bool) throws(TransferError) -> OpaquePointer {
        let key = isPrivate
            ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, raw, raw.count)
            : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, raw, raw.count)
        guard let key else { throw .invalidKey("OpenSSL refused the raw Ed25519 key") }
        return key
    }

    static func rawKey(_ pkey: OpaquePointer, isPrivate: Bool) throws(TransferError) -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        let ok = isPrivate
            ? EVP_PKEY_get_raw_private_key(pkey, &raw, &length)
            : EVP_PKEY_get_raw_public_key(pkey, &raw, &length)
        guard ok == 1, length == 32 else { throw .invalidKey("not an Ed25519 key") }
        return raw
    }

    static func readPEM(_ pem: String, isPrivate: Bool) throws(TransferError) -> OpaquePointer {
        let bytes = Array(pem.utf8)
        let key: OpaquePointer? = bytes.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let key else {
            throw .invalidKey("not a PEM \(isPrivate ? "private" : "public") key")
        }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(key)
            throw .invalidKey("the PEM key is not Ed25519")
        }
        return key
    }

    static func writePEM(_ pkey: OpaquePointer, isPrivate: Bool) throws(TransferError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw error("BIO_new") }
        defer { BIO_free(bio) }
        let ok = isPrivate
            ? PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil)
            : PEM_write_bio_PUBKEY(bio, pkey)
        guard ok == 1 else { throw error("PEM_write_bio") }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = fledge_BIO_get_mem_data(bio, &pointer)
        guard let pointer, length > 0 else { throw error("BIO_get_mem_data") }
        return UnsafeRawBufferPointer(start: pointer, count: length).withMemoryRebound(to: UInt8.self) {
            String(decoding: $0, as: UTF8.self)
        }
    }
}
