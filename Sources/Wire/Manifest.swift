/// A release as its publisher signed it: which files make it up, their hashes, and the SHA-256
/// of every piece, so a receiver can check each piece on arrival from any source, trusted or not.
///
/// The JSON form is what travels; `canonicalBytes` is what the signature covers. Structural
/// checks live here (`Manifest.decode`); the signature check needs OpenSSL and lives in Transfer.
public struct Manifest: Codable, Sendable, Equatable {
    /// The only manifest format this build understands.
    public static let currentFormat = 1

    public var format: Int
    public var name: String
    public var version: String
    /// Size in bytes of every piece but the last of each file.
    public var pieceSize: Int64
    /// Unix seconds.
    public var createdAt: Int64
    /// Unix seconds; a manifest past this moment is refused.
    public var expiresAt: Int64
    public var files: [ReleaseFile]
    /// Identifies the Ed25519 key that signed (`KeyID` of its public key).
    public var keyId: String
    /// Base64 Ed25519 signature over `canonicalBytes`.
    public var signature: String
    /// More signatures, each by another key over `canonicalBytes(keyId:)` with its own key id:
    /// an agent trusting a threshold of its pinned keys can have a key rotated without a flag
    /// day (sign with old and new, then drop the old).
    public var cosignatures: [ManifestSignature]?
    /// The oldest version a host may install once it has confirmed this release (signed): a
    /// publisher withdrawing older releases says so here, and no order can go below it.
    public var minimumVersion: String?

    public init(
        name: String, version: String, pieceSize: Int64, createdAt: Int64, expiresAt: Int64,
        files: [ReleaseFile], keyId: String = "", signature: String = "", minimumVersion: String? = nil
    ) {
        self.format = Manifest.currentFormat
        self.name = name
        self.version = version
        self.pieceSize = pieceSize
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.files = files
        self.keyId = keyId
        self.signature = signature
        self.minimumVersion = minimumVersion
    }

    public var totalSize: Int64 { files.reduce(0) { $0 + $1.size } }
    public var totalPieces: Int { files.reduce(0) { $0 + $1.pieces.count } }

    public func file(role: ReleaseFile.Role) -> ReleaseFile? { files.first { $0.role == role } }
    public func file(named name: String) -> ReleaseFile? { files.first { $0.name == name } }

    /// The exact bytes the primary signature covers: a line-oriented text in a fixed order, so
    /// every build of every version produces the same bytes (JSON encoders need not agree).
    /// Names and hashes are validated to contain no newlines before this is used.
    public var canonicalBytes: [UInt8] { canonicalBytes(keyId: keyId) }

    /// What the signature by `keyId` covers: the canonical text naming that key.
    public func canonicalBytes(keyId: String) -> [UInt8] {
        var lines = [
            "fledge-manifest/\(format)",
            "name=\(name)", "version=\(version)", "piece-size=\(pieceSize)",
            "created-at=\(createdAt)", "expires-at=\(expiresAt)", "key-id=\(keyId)",
        ]
        if let minimumVersion { lines.append("minimum-version=\(minimumVersion)") }
        lines.append("files=\(files.count)")
        for file in files {
            lines.append("file=\(file.role.rawValue) \(file.name) \(file.size) \(file.mode) \(file.sha256) \(file.md5)")
            lines.append(contentsOf: file.pieces.map { "piece=\($0)" })
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// Every signature it carries, the primary first.
    public var signatures: [ManifestSignature] {
        [ManifestSignature(keyId: keyId, signature: signature)] + (cosignatures ?? [])
    }

    /// The same release: the same files, bytes and pieces (a re-signed manifest differs only in
    /// its times and signatures, and a host holding the old one takes the new one).
    public func sameContent(as other: Manifest) -> Bool {
        name == other.name && version == other.version && pieceSize == other.pieceSize && files == other.files
            && minimumVersion == other.minimumVersion
    }

    /// Whether this signing of a release is newer than `other`'s (re-signed later, or with a
    /// later expiry): what a store keeps when both verify, so a stale mirror's older signing
    /// never replaces a newer one.
    public func isNewerSigning(than other: Manifest) -> Bool {
        (createdAt, expiresAt) > (other.createdAt, other.expiresAt)
    }
}

/// One key's signature of a manifest.
public struct ManifestSignature: Codable, Sendable, Equatable {
    public var keyId: String
    /// Base64 Ed25519 signature over the manifest's `canonicalBytes(keyId:)`.
    public var signature: String

    public init(keyId: String, signature: String) {
        self.keyId = keyId
        self.signature = signature
    }
}

/// One file of a release: the binary, its config or its systemd unit.
public struct ReleaseFile: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable, CaseIterable {
        case bin, cfg, unit
    }

    public var role: Role
    /// A plain file name (no directories), also its name on every source: `{base}/{name}/{version}/{file}`.
    public var name: String
    public var size: Int64
    /// Permission bits, e.g. 0o755.
    public var mode: Int
    /// Lowercase hex.
    public var sha256: String
    /// Lowercase hex; for falcon-compatible consumers of the same file.
    public var md5: String
    /// Lowercase hex SHA-256 of each piece, in order.
    public var pieces: [String]

    public init(role: Role, name: String, size: Int64, mode: Int, sha256: String, md5: String, pieces: [String]) {
        self.role = role
        self.name = name
        self.size = size
        self.mode = mode
        self.sha256 = sha256
        self.md5 = md5
        self.pieces = pieces
    }

    /// Byte range `[start, end)` of piece `index` for a given piece size.
    public func pieceRange(_ index: Int, pieceSize: Int64) -> Range<Int64> {
        let start = Int64(index) * pieceSize
        return start..<min(start + pieceSize, size)
    }

    /// How many pieces a file of `size` bytes has.
    public static func pieceCount(size: Int64, pieceSize: Int64) -> Int {
        size <= 0 ? 0 : Int((size + pieceSize - 1) / pieceSize)
    }
}
