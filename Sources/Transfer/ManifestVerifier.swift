#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Wire

/// Opens signed manifests: structure (Wire), then expiry, then the signature against pinned keys.
/// The only way Transfer turns bytes into a `Manifest` it will act on.
public struct ManifestVerifier: Sendable {
    public let trustedKeys: [String: Ed25519PublicKey]
    /// Valid signatures by distinct pinned keys a manifest needs (1 by default; 2 of 3 keys
    /// lets one key be lost or rotated without trusting a single one alone).
    public let threshold: Int

    public init(trusting keys: [Ed25519PublicKey], threshold: Int = 1) {
        trustedKeys = Dictionary(keys.map { ($0.keyID, $0) }, uniquingKeysWith: { first, _ in first })
        self.threshold = max(1, threshold)
    }

    public func open(_ bytes: some Collection<UInt8>, now: Int64 = UnixTime.now) throws(ManifestError) -> Manifest {
        let manifest = try Manifest.decode(bytes)
        try verify(manifest, now: now)
        return manifest
    }

    /// Expiry, then the signatures: at least `threshold` of them valid, each by a distinct
    /// pinned key. A signature by a pinned key that does not verify is tampering and refused
    /// outright, whatever the others say.
    public func verify(_ manifest: Manifest, now: Int64 = UnixTime.now) throws(ManifestError) {
        guard manifest.expiresAt > now else { throw .expired(expiresAt: manifest.expiresAt, now: now) }
        var signers = Set<String>()
        for entry in manifest.signatures {
            guard let key = trustedKeys[entry.keyId] else { continue }
            guard let signature = Data(base64Encoded: entry.signature),
                  key.isValidSignature(Array(signature), for: manifest.canonicalBytes(keyId: entry.keyId))
            else { throw .badSignature(keyId: entry.keyId) }
            signers.insert(entry.keyId)
        }
        let valid = signers.count
        if valid == 0 && threshold == 1 { throw .unknownKey(manifest.keyId) }
        guard valid >= threshold else { throw .tooFewSignatures(valid: valid, threshold: threshold) }
    }
}

extension Manifest {
    /// Sets `keyId` and `signature` for `key`, and no cosignatures.
    public mutating func sign(with key: Ed25519PrivateKey) throws(TransferError) {
        try sign(with: [key])
    }

    /// Signs with every key: the first is the primary signature, the others cosignatures.
    public mutating func sign(with keys: [Ed25519PrivateKey]) throws(TransferError) {
        guard let first = keys.first else { throw .invalidKey("a manifest needs at least one signing key") }
        var signed: [ManifestSignature] = []
        for key in keys {
            let id = try key.publicKey.keyID
            signed.append(ManifestSignature(keyId: id, signature: try Data(key.signature(for: canonicalBytes(keyId: id))).base64EncodedString()))
        }
        keyId = try first.publicKey.keyID
        signature = signed[0].signature
        cosignatures = signed.count > 1 ? Array(signed.dropFirst()) : nil
    }
}

/// Wall-clock seconds since 1970, the unit of manifest times.
public enum UnixTime {
    public static var now: Int64 { Int64(Date().timeIntervalSince1970) }
}
