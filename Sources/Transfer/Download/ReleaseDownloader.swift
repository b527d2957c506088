import NIOPosix
import Synchronization
import Wire

/// Downloads one release into its `ReleaseAssembly` from an ordered list of sources (HTTP base
/// URLs serving `{base}/{name}/{version}/{file}`), with several pieces in flight over libcurl's
/// multi interface. Every piece is hashed as it streams to disk and counts only if its SHA-256
/// matches the signed manifest.
///
/// A source that serves a bad piece is banned for this download; one that refuses, times out
/// or dies mid-body loses its piece to the next source and is dropped after repeated failures.
/// When no source is left the download fails naming each and why. Pieces already verified on
/// disk are never fetched again, so a killed download resumes where it was.
public final class ReleaseDownloader: Sendable {
    public let assembly: ReleaseAssembly
    public let sources: [String]
    public let options: DownloadOptions
    private let onProgress: (@Sendable (DownloadProgress) -> Void)?
    private let cancelled = Atomic<Bool>(false)

    public init(
        assembly: ReleaseAssembly, sources: [String], options: DownloadOptions = .init(),
        onProgress: (@Sendable (DownloadProgress) -> Void)? = nil
    ) {
        self.assembly = assembly
        self.sources = sources
        self.options = options
        self.onProgress = onProgress
    }

    /// Stops a running download at its next step; `run` then throws `.cancelled`.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }

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

    /// One piece on its way: which, from where, and the transfer and hasher carrying it.
    private struct InFlight {
        let piece: PieceRef
        let source: Int
        let transfer: CurlTransfer
        let hasher: Hasher
        let expected: Int64
    }

    /// Runs the download to its end on the calling thread.
    public func run() throws(TransferError) -> DownloadReport {
        let started = ContinuousClock.now
        let manifest = assembly.manifest
        let resumedBytes = assembly.verifiedBytes
        var queue = assembly.missingPieces()
        var pool = SourcePool(bases: sources, failureLimit: options.sourceFailureLimit)
        // Sources a piece could not be had from (503: not there yet, or failed): try others first.
        var triedFor: [PieceRef: Set<Int>] = [:]
        // Pieces no source had yet (503 everywhere): not asked for again before this moment.
        var notBefore: [PieceRef: ContinuousClock.Instant] = [:]
        var inFlight: [ObjectIdentifier: InFlight] = [:]
        var receivedBytes: Int64 = 0
        var fetchedBytes: Int64 = 0
        var verifiedPieces = manifest.totalPieces - queue.count
        var verifiedBytes = resumedBytes
        let multi = try CurlMulti()
        // The cap is kept twice: pieces start in turn (the average), and each transfer is held
        // to its share (so one large piece does not burst).
        let limiter = options.maxBytesPerSecond.map { RateLimiter(bytesPerSecond: $0) }
        let perTransferCap = options.maxBytesPerSecond.map { max(1, $0 / Int64(max(1, options.maxInFlight))) }
        var rateWait: Duration? = nil

        func url(_ source: Int, _ piece: PieceRef) -> String {
            "\(pool.sources[source].base)/\(manifest.name)/\(manifest.version)/\(manifest.files[piece.file].name)"
        }

        while !queue.isEmpty || !inFlight.isEmpty {
            if cancelled.load(ordering: .relaxed) { throw .cancelled }
            let now = ContinuousClock.now

            // Fill free slots: the next piece from the first source that can take it.
            var deferred: [PieceRef] = []
            while inFlight.count < options.maxInFlight, !queue.isEmpty {
                let piece = queue.removeFirst()
                if let wait = notBefore[piece], wait > now {
                    deferred.append(piece)
                    continue
                }
                let excluded = triedFor[piece] ?? []
                if !pool.hasUsable(excluding: excluded) {
                    // Every usable source was tried for this piece: start its round over, shortly.
                    triedFor[piece] = nil
                    notBefore[piece] = now + .milliseconds(250)
                    deferred.append(piece)
                    continue
                }
                guard let source = pool.pick(maxPerSource: options.maxPerSource, excluding: excluded, now: now) else {
                    deferred.append(piece)
                    if pool.pick(maxPerSource: options.maxPerSource, excluding: [], now: now) == nil { break }
                    continue
                }
                guard let descriptor = assembly.partDescriptor(for: piece) else { continue }
                let range = assembly.range(of: piece)
                guard !range.isEmpty else { continue }
                if let limiter {
                    let wait = limiter.admit(range.count)
                    if wait > .zero {
                        deferred.append(piece)
                        rateWait = wait
                        break
                    }
                }
                var requestOptions = CurlRequestOptions()
                requestOptions.range = range.lowerBound...(range.upperBound - 1)
                requestOptions.acceptedStatuses = [206]
                requestOptions.connectTimeoutMs = options.connectTimeoutMs
                requestOptions.lowSpeedBytes = options.stallBytesPerSecond
                requestOptions.lowSpeedSeconds = options.stallSeconds
                requestOptions.maxRecvBytesPerSecond = perTransferCap
                let hasher = Hasher(.sha256)
                let transfer = try CurlTransfer(
                    url: url(source, piece),
                    sink: .file(descriptor, offset: range.lowerBound, limit: Int64(range.count), hashers: [hasher]),
                    options: requestOptions)
                inFlight[ObjectIdentifier(transfer)] = InFlight(
                    piece: piece, source: source, transfer: transfer, hasher: hasher, expected: Int64(range.count))
                pool.started(source)
                multi.add(transfer)
            }
            queue.insert(contentsOf: deferred, at: 0)

            if inFlight.isEmpty {
                if pool.allRemoved { throw .allSourcesFailed(pool.failures) }
                // Everyone usable is backing off, or has no piece yet: wait a little.
                let ready = [pool.nextReady, notBefore.values.min(), rateWait.map { now + $0 }].compactMap { $0 }.filter { $0 > now }.min()
                let wait = (ready ?? now + .milliseconds(100)) - now
                multi.poll(timeoutMs: Int32(max(1, min(500, wait.milliseconds))))
                rateWait = nil
                continue
            }

            multi.perform()
            for (transfer, outcome) in multi.takeFinished() {
                guard let flight = inFlight.removeValue(forKey: ObjectIdentifier(transfer)) else { continue }
                pool.finished(flight.source)
                receivedBytes += transfer.received
                let file = manifest.files[flight.piece.file]
                let what = "piece \(flight.piece.index) of \(file.name)"
                switch outcome {
                case .completed(let status) where transfer.statusWasAccepted:
                    guard transfer.received == flight.expected else {
                        pool.failed(flight.source, reason: "sent \(transfer.received) of \(flight.expected) bytes of \(what)", now: .now)
                        queue.insert(flight.piece, at: 0)
                        continue
                    }
                    let digest = flight.hasher.finalizeHex()
                    guard digest == file.pieces[flight.piece.index] else {
                        pool.ban(flight.source, reason: "served a corrupt \(what) (HTTP \(status), sha256 \(digest.prefix(16))…)")
                        triedFor[flight.piece, default: []].insert(flight.source)
                        queue.insert(flight.piece, at: 0)
                        continue
                    }
                    try assembly.markVerified(flight.piece)
                    pool.delivered(flight.source, bytes: flight.expected)
                    triedFor[flight.piece] = nil
                    fetchedBytes += flight.expected
                    verifiedBytes += flight.expected
                    verifiedPieces += 1
                    onProgress?(DownloadProgress(
                        verifiedBytes: verifiedBytes, totalBytes: manifest.totalSize, verifiedPieces: verifiedPieces,
                        totalPieces: manifest.totalPieces, bytesBySource: pool.bytesBySource))
                case .completed(503):
                    // A peer that does not hold this piece yet: ask someone else, no blame.
                    triedFor[flight.piece, default: []].insert(flight.source)
                    queue.append(flight.piece)
                case .completed(let status):
                    let body = String(decoding: transfer.body.prefix(120), as: UTF8.self)
                    pool.failed(flight.source, reason: "HTTP \(status) for \(what)\(body.isEmpty ? "" : ": \(body)")", now: .now)
                    triedFor[flight.piece, default: []].insert(flight.source)
                    queue.insert(flight.piece, at: 0)
                case .transportFailed(_, let message, _):
                    pool.failed(flight.source, reason: message, now: .now)
                    triedFor[flight.piece, default: []].insert(flight.source)
                    queue.insert(flight.piece, at: 0)
                case .sinkFailed(let error):
                    if case .http(let detail) = error {
                        // It sent more than the range asked for: not a source to trust.
                        pool.ban(flight.source, reason: detail)
                        queue.insert(flight.piece, at: 0)
                    } else {
                        throw error  // our disk, not their fault
                    }
                }
            }
            if pool.allRemoved && !queue.isEmpty { throw .allSourcesFailed(pool.failures) }
            if !inFlight.isEmpty { multi.poll(timeoutMs: rateWait.map { Int32(max(1, min(100, $0.milliseconds))) } ?? 100) }
            rateWait = nil
        }

        try assembly.finalize()
        return DownloadReport(
            fetchedBytes: fetchedBytes, receivedBytes: receivedBytes, resumedBytes: resumedBytes,
            bytesBySource: pool.bytesBySource, droppedSources: pool.failures,
            seconds: (ContinuousClock.now - started).seconds)
    }
}

extension Duration {
    /// Seconds as a Double, for reports.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// Whole milliseconds, for poll timeouts.
    var milliseconds: Int { Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000) }
    /// Whole nanoseconds, for NIO's TimeAmount.
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
