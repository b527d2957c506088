import Glibc
import SystemPackage
import Wire

/// What a range server may serve: it maps a request's path components to a file, or to nothing.
/// The Seeder serves a directory tree (`DirectoryCatalog`); an agent serves its verified
/// releases and the verified pieces of the one it is assembling (`PieceStoreCatalog`).
public protocol RangeServerCatalog: Sendable {
    func entry(for components: [String]) -> CatalogEntry?
    /// What this catalog holds of a release it relays, for its availability endpoints
    /// (`PieceAvailability`); nil when it publishes none (an origin holds every piece of what
    /// it serves).
    func availability(name: String, version: String) -> AvailabilityLog?
    /// Whether it publishes availability at all: a peer does (a nil log is then "not now"),
    /// an origin does not (its availability paths are 404: it holds everything).
    var publishesAvailability: Bool { get }
}

extension RangeServerCatalog {
    public func availability(name: String, version: String) -> AvailabilityLog? { nil }
    public var publishesAvailability: Bool { false }
}

/// A servable file, and which of its bytes may be served now.
public struct CatalogEntry: Sendable {
    public enum Availability: Sendable {
        /// Final and verified: every byte, zero-copy.
        case complete(FilePath)
        /// Being assembled: only ranges inside verified pieces; the closure says where to read
        /// them, or nil when some byte of the range is not verified yet.
        case partial(@Sendable (ClosedRange<Int64>) -> FilePath?)
    }

    public let size: Int64
    public let etag: String
    public let availability: Availability

    public init(size: Int64, etag: String, availability: Availability) {
        self.size = size
        self.etag = etag
        self.availability = availability
    }

    /// An entry for a final file on disk, with an nginx-style `"mtime-size"` ETag.
    static func complete(_ path: FilePath) -> CatalogEntry? {
        var info = stat()
        guard stat(path.string, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let etag = "\"\(String(info.st_mtim.tv_sec, radix: 16))-\(String(info.st_size, radix: 16))\""
        return CatalogEntry(size: Int64(info.st_size), etag: etag, availability: .complete(path))
    }
}

/// Serves the regular files under a root directory, as an origin or CDN does. Symlinks are
/// followed only where they stay inside the root.
public struct DirectoryCatalog: RangeServerCatalog {
    public let root: FilePath

    public init(root: FilePath) throws(TransferError) {
        guard let resolved = Self.realPath(root) else {
            throw .io("opening root \(root)", errno: Errno(rawValue: errno))
        }
        self.root = resolved
    }

    public func entry(for components: [String]) -> CatalogEntry? {
        var path = root
        for component in components { path.append(component) }
        guard let resolved = Self.realPath(path), resolved.starts(with: root), resolved != root else { return nil }
        return .complete(resolved)
    }

    static func realPath(_ path: FilePath) -> FilePath? {
        guard let resolved = realpath(path.string, nil) else { return nil }
        defer { free(resolved) }
        return FilePath(String(cString: resolved))
    }
}

/// Serves a `PieceStore`: `NAME/VERSION/FILE` of releases held complete and verified, and the
/// verified pieces of releases being assembled, so peers can relay before they finish.
public struct PieceStoreCatalog: RangeServerCatalog {
    public let store: PieceStore

    public init(store: PieceStore) { self.store = store }

    public func entry(for components: [String]) -> CatalogEntry? {
        guard components.count == 3 else { return nil }
        let (name, version, file) = (components[0], components[1], components[2])
        let directory = store.releaseDirectory(name: name, version: version)
        if Files.exists(directory.appending(ReleaseAssembly.manifestFileName)) {
            return .complete(directory.appending(file))
        }
        guard let assembly = store.openAssembly(name: name, version: version) else { return nil }
        if file == ReleaseAssembly.manifestFileName {
            return .complete(directory.appending(ReleaseAssembly.partialDirectoryName).appending(file))
        }
        guard let releaseFile = assembly.manifest.file(named: file) else { return nil }
        return CatalogEntry(
            size: releaseFile.size, etag: "\"\(releaseFile.sha256.prefix(32))\"",
            availability: .partial { range in assembly.servable(file: file, range: range) })
    }

    public func availability(name: String, version: String) -> AvailabilityLog? {
        store.availability(name: name, version: version)
    }

    public var publishesAvailability: Bool { true }
}
