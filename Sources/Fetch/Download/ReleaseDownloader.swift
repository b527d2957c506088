import NIOPosix
import Synchronization
import Transfer
import Wire

/// Downloads one release into its `ReleaseAssembly` from an ordered list of sources (HTTP base
/// URLs serving `{base}/{name}/{version}/{file}`), with several pieces in flight over libcurl's
/// multi interface. Every piece is hashed as it streams to disk and counts only if its SHA-256
/// matches the signed manifest.
///
/// Which piece goes to which source, and when a source is out, is the swarm policy's
/// (`PieceScheduler`): peers stream their availability and are asked only for what they hold,
/// the rarest pieces first; an overdue piece is asked of a second holder; a source that serves
/// a bad piece is banned, one that refuses, stalls, lies about what it holds or sends the
/// wrong range is dropped; `fallbacks` (an origin kept as a last resort) are asked once the
/// download starves. When no source is left the download fails naming each and why. Pieces
/// already verified on disk are never fetched again, so a killed download resumes where it was.
public final class ReleaseDownloader: Sendable {
    public let assembly: ReleaseAssembly
    public let sources: [String]
    public let fallbacks: [String]
    public let options: DownloadOptions
    private let onProgress: (@Sendable (DownloadProgress) -> Void)?
    private let cancelled = Atomic<Bool>(false)
    /// Sources offered while running (by HBS, or peers that announced themselves), not yet
    /// taken in by the session.
    private let offered = Mutex<(sources: [String], announced: [String])>(([], []))

    public init(
        assembly: ReleaseAssembly, sources: [String], fallbacks: [String] = [], options: DownloadOptions = .init(),
        onProgress: (@Sendable (DownloadProgress) -> Void)? = nil
    ) {
        self.assembly = assembly
        self.sources = sources
        self.fallbacks = fallbacks
        self.options = options
        self.onProgress = onProgress
    }

    /// Stops a running download at its next step; `run` then throws `.cancelled`.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// More sources for the running download (peers HBS found since); taken in at its next step.
    public func offer(sources: [String]) { offered.withLock { $0.sources += sources } }

    /// A peer fetching this release from this host announced its own range server: taken in
    /// as a source, as the swarm policy allows.
    public func offer(announced url: String) { offered.withLock { $0.announced.append(url) } }

    /// Runs the download on a thread of its own: the multi loop blocks in poll, which must
    /// never happen on the cooperative pool. Cancelling the task cancels the download.
    public func download() async throws(TransferError) -> DownloadReport {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        defer { thread.shutdownGracefully { _ in } }
        let result: Result<DownloadReport, TransferError>
        do {
            result = try await withTaskCancellationHandler {
                try await thread.runIfActive { Result { () throws(TransferError) in try self.run() } }
            } onCancel: {
                self.cancel()
            }
        } catch {
            throw .cancelled
        }
        return try result.get()
    }

    /// Runs the download to its end on the calling thread.
    public func run() throws(TransferError) -> DownloadReport {
        let session = try DownloadSession(
            assembly: assembly, sources: sources, fallbacks: fallbacks, options: options, onProgress: onProgress)
        while !session.isDone {
            if cancelled.load(ordering: .relaxed) { throw .cancelled }
            let more = offered.withLock { offered in
                defer { offered = ([], []) }
                return offered
            }
            if !more.sources.isEmpty { session.add(sources: more.sources) }
            if !more.announced.isEmpty { session.add(announced: more.announced) }
            try session.step()
        }
        session.finish()
        try assembly.finalize()
        return session.result()
    }
}
