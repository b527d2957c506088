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

    public init(trusting keys: [Ed25519PublicKey]) {
        trustedKeys = Dictionary(keys.map { ($0.keyID, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public func open(_ bytes: some Collection<UInt8>, now: Int64 = UnixTime.now) throws(ManifestError) -> Manifest {
        let manifest = try Manifest.decode(bytes)
        try verify(manifest, now: now)
        return manifest
    }

    public func verify(_ manifest: Manifest, now: Int64 = UnixTime.now) throws(ManifestError) {
        guard manifest.expiresAt > now else { throw .expired(expiresAt: manifest.expiresAt, now: now) }
        guard let key = trustedKeys[manifest.keyId] else { throw .unknownKey(manifest.keyId) }
        guard let signature = Data(base64Encoded: manifest.signature),
            key.isValidSignature(Array(signature), for: manifest.canonicalBytes)
        else { throw .badSignature(keyId: manifest.keyId) }
    }
}

extension ManifestVerifier {
    /// The manifest of `name` `version` from `manifestURL` when given, else from each source's
    /// `{base}/{name}/{version}/manifest.json` in turn: the first that verifies and is that
    /// release. Otherwise every source's failure (bad signature, unknown key, expired,
    /// unreachable, another release), named. Each source gets at most `seconds` and `maxBytes`:
    /// one that trickles or never ends its body cannot hold the upgrade.
    public func fetch(
        name: String, version: String, from sources: [String], manifestURL: String? = nil,
        maxBytes: Int = DownloadOptions().maxManifestBytes, seconds: Int = DownloadOptions().manifestSeconds
    ) throws(TransferError) -> Manifest {
        let urls = manifestURL.map { [$0] } ?? sources.map {
            ($0.hasSuffix("/") ? String($0.dropLast()) : $0) + "/\(name)/\(version)/manifest.json"
        }
        var failures: [SourceFailure] = []
        for url in urls {
            do {
                let manifest = try open(try Curl.get(url, limit: maxBytes, timeoutSeconds: seconds))
                guard manifest.name == name, manifest.version == version else {
                    failures.append(SourceFailure(source: url, reason: "holds \(manifest.name) \(manifest.version), not \(name) \(version)"))
                    continue
                }
                return manifest
            } catch let error as ManifestError {
                failures.append(SourceFailure(source: url, reason: error.description))
            } catch {
                failures.append(SourceFailure(source: url, reason: "\(error)"))
            }
        }
        throw .allSourcesFailed(failures)
    }
}

extension Manifest {
    /// Sets `keyId` and `signature` for `key`.
    public mutating func sign(with key: Ed25519PrivateKey) throws(TransferError) {
        keyId = try key.publicKey.keyID
        signature = try Data(key.signature(for: canonicalBytes)).base64EncodedString()
    }
}

/// Wall-clock seconds since 1970, the unit of manifest times.
public enum UnixTime {
    public static var now: Int64 { Int64(Date().timeIntervalSince1970) }
}
