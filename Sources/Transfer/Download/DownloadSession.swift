import Wire

/// One run of a `ReleaseDownloader`: the pieces still wanted, the sources and what they did,
/// the transfers in flight on one libcurl multi handle. Driven by `step()` on one thread.
final class DownloadSession {
    /// One piece on its way: which, from where, and the transfer and hasher carrying it.
    private struct InFlight {
        let piece: PieceRef
        let source: Int
        let transfer: CurlTransfer
        let hasher: Hasher
        let expected: Int64
    }

    private let assembly: ReleaseAssembly
    private let manifest: Manifest
    private let options: DownloadOptions
    private let onProgress: (@Sendable (DownloadProgress) -> Void)?
    private let multi: CurlMulti
    /// The rate cap is kept twice: pieces start in turn (the average), and each transfer is
    /// held to its share (so one large piece does not burst).
    private let limiter: RateLimiter?
    private let perTransferCap: Int64?
    private let started = ContinuousClock.now
    private let resumedBytes: Int64

    private var queue: PieceQueue
    private var pool: SourcePool
    private var inFlight: [ObjectIdentifier: InFlight] = [:]
    private var rateWait: Duration?
    private var receivedBytes: Int64 = 0
    private var fetchedBytes: Int64 = 0
    private var verifiedPieces: Int

    init(
        assembly: ReleaseAssembly, sources: [String], options: DownloadOptions,
        onProgress: (@Sendable (DownloadProgress) -> Void)?
    ) throws(TransferError) {
        self.assembly = assembly
        self.manifest = assembly.manifest
        self.options = options
        self.onProgress = onProgress
        self.multi = try CurlMulti()
        self.limiter = options.maxBytesPerSecond.map { RateLimiter(bytesPerSecond: $0) }
        self.perTransferCap = options.maxBytesPerSecond.map { max(1, $0 / Int64(max(1, options.maxInFlight))) }
        self.resumedBytes = assembly.verifiedBytes
        let missing = assembly.missingPieces()
        self.queue = PieceQueue(missing)
        self.pool = SourcePool(bases: sources, failureLimit: options.sourceFailureLimit)
        self.verifiedPieces = manifest.totalPieces - missing.count
    }

    var isDone: Bool { queue.isEmpty && inFlight.isEmpty }

    /// Starts what can start, moves the transfers on, settles the finished ones, and waits
    /// for the next thing to happen (a socket, a backoff ending, the rate cap).
    func step() throws(TransferError) {
        try fillSlots()
        if inFlight.isEmpty {
            if pool.allRemoved { throw .allSourcesFailed(pool.failures) }
            // Every usable source is backing off, or has none of the pieces yet: wait a little.
            let now = ContinuousClock.now
            let ready = [pool.nextReady, queue.nextReady, rateWait.map { now + $0 }]
                .compactMap { $0 }.filter { $0 > now }.min()
            multi.poll(timeoutMs: Int32(max(1, min(500, ((ready ?? now + .milliseconds(100)) - now).milliseconds))))
            rateWait = nil
            return
        }
        multi.perform()
        for (transfer, outcome) in multi.takeFinished() {
            guard let flight = inFlight.removeValue(forKey: ObjectIdentifier(transfer)) else { continue }
            try settle(flight, outcome)
        }
        if pool.allRemoved && !queue.isEmpty { throw .allSourcesFailed(pool.failures) }
        if !inFlight.isEmpty {
            multi.poll(timeoutMs: Int32(max(1, min(100, rateWait?.milliseconds ?? 100))))
        }
        rateWait = nil
    }

    /// Fills free slots: the next piece from the first source that can take it.
    private func fillSlots() throws(TransferError) {
        while inFlight.count < options.maxInFlight {
            guard let (piece, source) = queue.next(pool: pool, maxPerSource: options.maxPerSource, now: .now) else { return }
            let range = assembly.range(of: piece)
            if let limiter {
                let wait = limiter.admit(range.count)
                if wait > .zero {
                    queue.putBack(piece)
                    rateWait = wait
                    return
                }
            }
            try start(piece, from: source, range: range)
        }
    }

    private func start(_ piece: PieceRef, from source: Int, range: Range<Int64>) throws(TransferError) {
        guard let descriptor = assembly.partDescriptor(for: piece) else { return }
        var request = CurlRequestOptions()
        request.range = range.lowerBound...(range.upperBound - 1)
        request.acceptedStatuses = [206]
        request.connectTimeoutMs = options.connectTimeoutMs
        request.lowSpeedBytes = options.stallBytesPerSecond
        request.lowSpeedSeconds = options.stallSeconds
        request.maxRecvBytesPerSecond = perTransferCap
        let hasher = Hasher(.sha256)
        let url = "\(pool.sources[source].base)/\(manifest.name)/\(manifest.version)/\(manifest.files[piece.file].name)"
        let transfer = try CurlTransfer(
            url: url, sink: .file(descriptor, offset: range.lowerBound, limit: Int64(range.count), hashers: [hasher]),
            options: request)
        inFlight[ObjectIdentifier(transfer)] = InFlight(
            piece: piece, source: source, transfer: transfer, hasher: hasher, expected: Int64(range.count))
        pool.started(source)
        multi.add(transfer)
    }

    /// What a finished transfer means for its piece and its source.
    private func settle(_ flight: InFlight, _ outcome: CurlOutcome) throws(TransferError) {
        pool.finished(flight.source)
        let transfer = flight.transfer
        receivedBytes += transfer.received
        let file = manifest.files[flight.piece.file]
        let what = "piece \(flight.piece.index) of \(file.name)"
        switch outcome {
        case .completed(let status) where transfer.statusWasAccepted:
            guard transfer.received == flight.expected else {
                pool.failed(flight.source, reason: "sent \(transfer.received) of \(flight.expected) bytes of \(what)", now: .now)
                return queue.failed(flight.piece, on: flight.source)
            }
            let digest = flight.hasher.finalizeHex()
            guard digest == file.pieces[flight.piece.index] else {
                pool.ban(flight.source, reason: "served a corrupt \(what) (HTTP \(status), sha256 \(digest.prefix(16))…)")
                return queue.failed(flight.piece, on: flight.source)
            }
            try assembly.markVerified(flight.piece)
            pool.delivered(flight.source, bytes: flight.expected)
            queue.verified(flight.piece)
            fetchedBytes += flight.expected
            verifiedPieces += 1
            onProgress?(DownloadProgress(
                verifiedBytes: resumedBytes + fetchedBytes, totalBytes: manifest.totalSize, verifiedPieces: verifiedPieces,
                totalPieces: manifest.totalPieces, bytesBySource: pool.bytesBySource))
        case .completed(503):
            // A peer that does not hold this piece yet: ask someone else, no blame (for a while).
            pool.unavailable(flight.source, now: .now, patience: options.unavailablePatience)
            queue.unavailable(flight.piece, at: flight.source)
        case .completed(let status):
            let body = String(decoding: transfer.body.prefix(120), as: UTF8.self)
            pool.failed(flight.source, reason: "HTTP \(status) for \(what)\(body.isEmpty ? "" : ": \(body)")", now: .now)
            queue.failed(flight.piece, on: flight.source)
        case .transportFailed(let message):
            pool.failed(flight.source, reason: message, now: .now)
            queue.failed(flight.piece, on: flight.source)
        case .sinkFailed(.http(let detail)):
            // It sent more than the range asked for: not a source to trust.
            pool.ban(flight.source, reason: detail)
            queue.failed(flight.piece, on: flight.source)
        case .sinkFailed(let error):
            throw error  // our disk, not their fault: stop, keep the verified pieces
        }
    }

    func report() -> DownloadReport {
        DownloadReport(
            fetchedBytes: fetchedBytes, receivedBytes: receivedBytes, resumedBytes: resumedBytes,
            bytesBySource: pool.bytesBySource, droppedSources: pool.failures,
            seconds: (ContinuousClock.now - started).seconds)
    }
}
