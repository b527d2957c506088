import SystemPackage
import Transfer
import Wire

/// Publishes a release into an origin root, in the two layouts every source serves:
///
///     ROOT/NAME/VERSION/manifest.json + the files   (Fledge: signed, piece-verified)
///     ROOT/NAME/bin_VERSION, ROOT/NAME/cfg_VERSION   (falcon: `{wgeturl}/bin_{version}`, md5)
///
/// so nginx or any CDN can serve the same tree. Publishing is idempotent for the same bytes and
/// refuses a version that already exists with different bytes.
public struct Publisher: Sendable {
    public struct Input: Sendable {
        public var name: String
        public var version: String
        public var binary: FilePath
        public var config: FilePath?
        public var unit: FilePath?
        /// Piece size in bytes; nil picks one that gives the largest file about 128 pieces.
        public var pieceSize: Int64?
        public var validSeconds: Int64 = 90 * 24 * 3600
        /// The oldest version a host may install once it confirmed this one (signed).
        public var minimumVersion: String?

        public init(name: String, version: String, binary: FilePath, config: FilePath? = nil, unit: FilePath? = nil, pieceSize: Int64? = nil) {
            self.name = name
            self.version = version
            self.binary = binary
            self.config = config
            self.unit = unit
            self.pieceSize = pieceSize
        }
    }

    public let root: FilePath
    /// Every key signs (the first is the primary signature): agents trusting a threshold of
    /// their pinned keys need that many.
    public let keys: [Ed25519PrivateKey]

    public init(root: FilePath, key: Ed25519PrivateKey) {
        self.init(root: root, keys: [key])
    }

    public init(root: FilePath, keys: [Ed25519PrivateKey]) {
        self.root = root
        self.keys = keys
    }

    /// Pieces of at least 64 KiB and at most 4 MiB, about 128 for the largest file: enough
    /// for peers to swap pieces early, few enough that requests stay cheap.
    public static func defaultPieceSize(largestFile: Int64) -> Int64 {
        var size: Int64 = 64 * 1024
        while size < 4 << 20 && largestFile / size > 128 { size *= 2 }
        return size
    }

    /// Hashes, signs and lays out the release; returns its signed manifest.
    public func publish(_ input: Input, now: Int64 = UnixTime.now) throws(PublishError) -> Manifest {
        guard ReleaseName.isValid(input.name) else { throw .invalidName("name", input.name) }
        guard ReleaseName.isValid(input.version) else { throw .invalidName("version", input.version) }
        if let minimum = input.minimumVersion, !ReleaseName.isValid(minimum) { throw .invalidName("minimum version", minimum) }
        let sources: [(ReleaseFile.Role, FilePath, Int)] =
            [(.bin, input.binary, 0o755)] + (input.config.map { [(.cfg, $0, 0o644)] } ?? [])
            + (input.unit.map { [(.unit, $0, 0o644)] } ?? [])
        var sizes: [Int64] = []
        for (_, path, _) in sources {
            guard let size = Files.regularFileSize(path) else { throw .missingFile(path) }
            sizes.append(size)
        }
        let pieceSize = input.pieceSize ?? Self.defaultPieceSize(largestFile: sizes.max() ?? 0)
        guard pieceSize > 0 else { throw .invalidPieceSize(pieceSize) }

        var files: [ReleaseFile] = []
        var names = Set<String>()
        for (role, path, mode) in sources {
            guard let fileName = path.lastComponent?.string, ReleaseName.isValid(fileName) else {
                throw .invalidName("file name", path.lastComponent?.string ?? path.string)
            }
            guard names.insert(fileName).inserted else { throw .duplicateFileName(fileName) }
            files.append(try Self.describe(path, role: role, name: fileName, mode: mode, pieceSize: pieceSize))
        }
        var manifest = Manifest(
            name: input.name, version: input.version, pieceSize: pieceSize, createdAt: now,
            expiresAt: now + input.validSeconds, files: files, minimumVersion: input.minimumVersion)
        do { try manifest.sign(with: keys) } catch { throw .transfer(error) }

        let releaseDirectory = root.appending(input.name).appending(input.version)
        let manifestPath = releaseDirectory.appending("manifest.json")
        if let existing = try? Manifest.decode(Files.read(manifestPath)) {
            // The same release (bytes, layout, declared minimum): publishing again changes nothing.
            // Anything else under this version, a new minimum included, is another release.
            guard existing.sameContent(as: manifest) else { throw .versionExists(name: input.name, version: input.version) }
            return existing
        }
        do throws(TransferError) {
            try Files.makeDirectory(releaseDirectory)
            for ((_, path, _), file) in zip(sources, files) {
                try Files.copy(path, to: releaseDirectory.appending(file.name), mode: file.mode)
            }
            try FalconLayout.link(manifest, from: releaseDirectory, root: root)
            // The manifest last: its presence says the release is complete.
            try Files.writeAtomically(Array(manifest.encoded()), to: manifestPath)
        } catch .conflict {
            throw .versionExists(name: input.name, version: input.version)
        } catch {
            throw .transfer(error)
        }
        return manifest
    }

    /// Gives a published release a new validity (from `now`, `validSeconds` long) and new
    /// signatures by this publisher's keys, without touching its bytes: how an expired release
    /// becomes installable again (a rollback to it), and how a key is rotated (sign with old and
    /// new; later with the new alone). Hosts holding the old manifest take the new one, since
    /// every file digest is the same. Returns the new manifest.
    public func resign(name: String, version: String, validSeconds: Int64, now: Int64 = UnixTime.now) throws(PublishError) -> Manifest {
        let manifestPath = root.appending(name).appending(version).appending("manifest.json")
        guard let bytes = try? Files.read(manifestPath) else { throw .notPublished(name: name, version: version) }
        var manifest: Manifest
        do { manifest = try Manifest.decode(bytes) } catch { throw .transfer(.manifest(error)) }
        manifest.createdAt = now
        manifest.expiresAt = now + validSeconds
        do {
            try manifest.sign(with: keys)
            try Files.writeAtomically(Array(manifest.encoded()), to: manifestPath)
        } catch { throw .transfer(error) }
        return manifest
    }

    /// Hashes a file once: whole SHA-256 and MD5, and the SHA-256 of each piece.
    static func describe(_ path: FilePath, role: ReleaseFile.Role, name: String, mode: Int, pieceSize: Int64) throws(PublishError) -> ReleaseFile {
        do {
            let hashes = try PieceHasher.hash(path, pieceSize: pieceSize)
            return ReleaseFile(role: role, name: name, size: hashes.size, mode: mode, sha256: hashes.sha256, md5: hashes.md5, pieces: hashes.pieces)
        } catch {
            throw .transfer(error)
        }
    }
}

/// Why a publish was refused.
public enum PublishError: Error, CustomStringConvertible {
    case missingFile(FilePath)
    case invalidName(String, String)
    case invalidPieceSize(Int64)
    case duplicateFileName(String)
    case versionExists(name: String, version: String)
    case notPublished(name: String, version: String)
    case transfer(TransferError)

    public var description: String {
        switch self {
        case .missingFile(let path): "\(path) is not a readable regular file"
        case .invalidName(let what, let value): "\(what) '\(value)' must be 1-128 of [A-Za-z0-9._+-], not starting with '.'"
        case .invalidPieceSize(let size): "piece size must be positive, got \(size)"
        case .duplicateFileName(let name): "two files of the release are both named '\(name)'; rename one"
        case .versionExists(let name, let version):
            "\(name) \(version) is already published with different bytes; publish a new version instead"
        case .notPublished(let name, let version): "\(name) \(version) is not published under this root (no manifest.json)"
        case .transfer(let error): error.description
        }
    }
}
