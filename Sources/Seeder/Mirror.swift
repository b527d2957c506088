import SystemPackage
import Transfer
import Wire

/// Pulls a published release from other sources into this origin's root: the manifest from
/// the first source that has one (verified against the pinned keys), the pieces from all of
/// them, then the falcon layout. Killed half-way, it resumes from the verified pieces on disk.
public struct Mirror: Sendable {
    public let root: FilePath
    public let verifier: ManifestVerifier
    public var options: DownloadOptions

    public init(root: FilePath, trusting keys: [Ed25519PublicKey], options: DownloadOptions = .init()) {
        self.root = root
        self.verifier = ManifestVerifier(trusting: keys)
        self.options = options
    }

    /// The first source's manifest that verifies; every source's failure otherwise.
    public func fetchManifest(name: String, version: String, sources: [String]) throws(TransferError) -> Manifest {
        var failures: [SourceFailure] = []
        for source in sources {
            let base = source.hasSuffix("/") ? String(source.dropLast()) : source
            do {
                let bytes = try Curl.get("\(base)/\(name)/\(version)/manifest.json")
                let manifest = try verifier.open(bytes)
                guard manifest.name == name, manifest.version == version else {
                    failures.append(SourceFailure(source: source, reason: "serves \(manifest.name) \(manifest.version) as \(name) \(version)"))
                    continue
                }
                return manifest
            } catch let error as ManifestError {
                failures.append(SourceFailure(source: source, reason: error.description))
            } catch {
                failures.append(SourceFailure(source: source, reason: "\(error)"))
            }
        }
        throw .allSourcesFailed(failures)
    }

    public func run(
        name: String, version: String, sources: [String],
        onProgress: (@Sendable (DownloadProgress) -> Void)? = nil
    ) async throws(TransferError) -> (Manifest, DownloadReport) {
        let manifest = try fetchManifest(name: name, version: version, sources: sources)
        let store = try PieceStore(root: root)
        let assembly = try store.assembly(for: manifest)
        let report = try await ReleaseDownloader(assembly: assembly, sources: sources, options: options, onProgress: onProgress).download()
        try FalconLayout.link(manifest, from: assembly.directory, root: root)
        return (manifest, report)
    }
}
