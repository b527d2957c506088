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
/// while they download, and each release's `AvailabilityLog`, so peers can stream what it
/// holds (even before its assembly opens).
public final class PieceStore: Sendable {
    public let root: FilePath
    private let open = Mutex<[String: ReleaseAssembly]>([:])
    private let logs = Mutex<[String: AvailabilityLog]>([:])
    /// Logs of releases this host holds nothing of yet, kept for peers that asked early; at
    /// most this many (a peer asking for made-up releases must not grow the store's memory).
    static let maxWaitingLogs = 8

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
        // A log peers already watch (they asked before the order came) goes on with its readers.
        let log = logs.withLock { logs in
            if let waiting = logs[key], !waiting.isAttached { return waiting }
            let log = AvailabilityLog()
            logs[key] = log
            return log
        }
        let assembly = try ReleaseAssembly(
            manifest: manifest, directory: releaseDirectory(name: manifest.name, version: manifest.version), availability: log)
        open.withLock { $0[key] = assembly }
        return assembly
    }

    /// What this host holds of `name` `version`, for its availability endpoints: the log of its
    /// assembly, of the whole release on disk, or (holding nothing yet) a log that will attach
    /// when the assembly opens. Nil for names that are no release names, or when too many
    /// releases nobody holds are being waited for.
    public func availability(name: String, version: String) -> AvailabilityLog? {
        guard ReleaseName.isValid(name), ReleaseName.isValid(version) else { return nil }
        let key = "\(name)/\(version)"
        if let assembly = openAssembly(name: name, version: version) { return assembly.availability }
        if let log = logs.withLock({ $0[key] }) { return log }
        let manifestPath = releaseDirectory(name: name, version: version).appending(ReleaseAssembly.manifestFileName)
        if let bytes = try? Files.read(manifestPath), let manifest = try? Manifest.decode(bytes) {
            let log = AvailabilityLog.complete(pieceCount: manifest.totalPieces)
            return logs.withLock { logs in
                if let raced = logs[key] { return raced }
                logs[key] = log
                return log
            }
        }
        return logs.withLock { logs in
            if let raced = logs[key] { return raced }
            let waiting = logs.values.filter { !$0.isAttached }.count
            guard waiting < Self.maxWaitingLogs else { return nil }
            let log = AvailabilityLog()
            logs[key] = log
            return log
        }
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
