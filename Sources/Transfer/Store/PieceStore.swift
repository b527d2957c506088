import Synchronization
import SystemPackage
import Wire

/// Releases on disk, whole or being assembled, laid out as every source serves them:
///
///     ROOT/NAME/VERSION/manifest.json        present only once every file is final
///     ROOT/NAME/VERSION/FILE                 final, verified files (appear by rename only)
///     ROOT/NAME/VERSION/.partial/            pieces being assembled, and which are verified
///
/// The store keeps the assemblies it opened, so a range server can serve their verified pieces
/// while they download.
public final class PieceStore: Sendable {
    public let root: FilePath
    private let open = Mutex<[String: ReleaseAssembly]>([:])

    public init(root: FilePath) throws(TransferError) {
        self.root = root
        try Files.makeDirectory(root)
    }

    public func releaseDirectory(name: String, version: String) -> FilePath {
        root.appending(name).appending(version)
    }

    /// Opens the assembly of `manifest`'s release: new, resumed from the pieces already on disk
    /// (each re-verified), or already complete. The manifest must already be verified.
    public func assembly(for manifest: Manifest) throws(TransferError) -> ReleaseAssembly {
        let key = "\(manifest.name)/\(manifest.version)"
        if let existing = open.withLock({ $0[key] }), existing.manifest == manifest { return existing }
        let assembly = try ReleaseAssembly(
            manifest: manifest, directory: releaseDirectory(name: manifest.name, version: manifest.version))
        open.withLock { $0[key] = assembly }
        return assembly
    }

    /// Releases held complete and verified (their manifest.json is present), for heartbeats:
    /// what this host can serve to peers.
    public func completeReleases() -> [HeldRelease] {
        var held: [HeldRelease] = []
        for name in Files.entries(root) where ReleaseName.isValid(name) {
            for version in Files.entries(root.appending(name)) where ReleaseName.isValid(version) {
                if Files.exists(releaseDirectory(name: name, version: version).appending(ReleaseAssembly.manifestFileName)) {
                    held.append(HeldRelease(name: name, version: version, complete: true))
                }
            }
        }
        return held.sorted { ($0.name, $0.version) < ($1.name, $1.version) }
    }

    /// An assembly this store has open, if any (complete ones included).
    public func openAssembly(name: String, version: String) -> ReleaseAssembly? {
        open.withLock { $0["\(name)/\(version)"] }
    }
}
