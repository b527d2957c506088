import Fetch
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

    public func run(
        name: String, version: String, sources: [String],
        onProgress: (@Sendable (DownloadProgress) -> Void)? = nil
    ) async throws(TransferError) -> (Manifest, DownloadReport) {
        let manifest = try verifier.fetch(name: name, version: version, from: sources)
        let store = try PieceStore(root: root)
        let assembly = try store.assembly(for: manifest)
        let report = try await ReleaseDownloader(assembly: assembly, sources: sources, options: options, onProgress: onProgress).download()
        try FalconLayout.link(manifest, from: assembly.directory, root: root)
        return (manifest, report)
    }
}
