import Wire

/// One run of a `ReleaseDownloader`: the pieces still wanted, the sources and what they did
/// (and which pieces each holds, from its piece map), the transfers in flight on one libcurl
/// multi handle. Driven by `step()` on one thread.
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
    /// held to it (so one large piece does not burst past it).
    private let limiter: RateLimiter?
    private let perTransferCap: Int64?
    private let started = ContinuousClock.now
    private let resumedBytes: Int64

    private var queue: PieceQueue
    private var pool: SourcePool
    private var inFlight: [ObjectIdentifier: InFlight] = [:]
    /// Piece-map requests in flight, by transfer, to the source they ask.
    private var mapPolls: [ObjectIdentifier: (source: Int, transfer: CurlTransfer)] = [:]
    private var mapPolledAt: [Int: ContinuousClock.Instant] = [:]
    /// The last moment a source other than a fallback had a piece in flight: a download idle
    /// for `fallbackPatience` since is starving, and may ask its fallbacks.
    private var lastPrimaryActivity = ContinuousClock.now
    private var rateWait: Duration?
    private var receivedBytes: Int64 = 0
    private var fetchedBytes: Int64 = 0
    private var verifiedPieces: Int

    init(
        assembly: ReleaseAssembly, sources: [String], fallbacks: [String] = [], options: DownloadOptions,
        onProgress: (@Sendable (DownloadProgress) -> Void)?
    ) throws(TransferError) {
        self.assembly = assembly
        self.manifest = assembly.manifest
        self.options = options
        self.onProgress = onProgress
        self.multi = try CurlMulti()
        self.limiter = options.maxBytesPerSecond.map { RateLimiter(bytesPerSecond: $0) }
        // The whole cap each: one transfer may fill the downlink (a peer or two with pieces yet);
        // pieces starting in turn keep the average.
        self.perTransferCap = options.maxBytesPerSecond
        self.resumedBytes = assembly.verifiedBytes
        let missing = assembly.missingPieces()
        var offsets: [Int] = [], total = 0
        for file in manifest.files {
            offsets.append(total)
            total += file.pieces.count
        }
        self.queue = PieceQueue(missing, fileOffsets: offsets)
        self.pool = SourcePool(bases: sources, fallbacks: fallbacks, failureLimit: options.sourceFailureLimit)
        self.verifiedPieces = manifest.totalPieces - missing.count
        for index in pool.sources.indices where !pool.sources[index].isFallback { pool.setHoldings(index, .unknown) }
    }

    var isDone: Bool { queue.isEmpty && inFlight.isEmpty }

    /// Sources named after the download began (more peers from HBS).
    func add(sources: [String]) {
        for base in sources {
            if let index = pool.add(base, fallback: false) {
                pool.setHoldings(index, .unknown)
                mapPolledAt[index] = nil
            }
        }
    }

    /// Stops what is still in flight once the download is over (piece-map requests).
    func finish() {
        for poll in mapPolls.values { multi.remove(poll.transfer) }
        mapPolls = [:]
    }

    /// Starts what can start, moves the transfers on, settles the finished ones, and waits
    /// for the next thing to happen (a socket, a backoff ending, the rate cap).
    func step() throws(TransferError) {
        pollMaps()
        try fillSlots()
        if inFlight.isEmpty && mapPolls.isEmpty {
            if pool.allRemoved { throw .allSourcesFailed(pool.failures) }
            // Every usable source is backing off, or has none of the pieces yet: wait a little.
            let now = ContinuousClock.now
            let ready = [pool.nextReady, queue.nextReady, rateWait.map { now + $0 }, nextMapPoll(now: now),
                         lastPrimaryActivity + options.fallbackPatience]
                .compactMap { $0 }.filter { $0 > now }.min()
            multi.poll(timeoutMs: Int32(max(1, min(500, ((ready ?? now + .milliseconds(100)) - now).milliseconds))))
            rateWait = nil
            return
        }
        multi.perform()
        for (transfer, outcome) in multi.takeFinished() {
            if let poll = mapPolls.removeValue(forKey: ObjectIdentifier(transfer)) {
                settleMap(poll.source, transfer, outcome)
                continue
            }
            guard let flight = inFlight.removeValue(forKey: ObjectIdentifier(transfer)) else { continue }
            try settle(flight, outcome)
        }
        if pool.allRemoved && !queue.isEmpty { throw .allSourcesFailed(pool.failures) }
        if !inFlight.isEmpty || !mapPolls.isEmpty {
            multi.poll(timeoutMs: Int32(max(1, min(100, rateWait?.milliseconds ?? 100))))
        }
        rateWait = nil
    }

    // MARK: Piece maps

    /// Asks the sources whose holdings are unknown or still growing for their piece map, each
    /// at most once per `pieceMapRefresh`. Fallbacks are not asked: they are origins.
    private func pollMaps() {
        guard !queue.isEmpty else { return }
        let now = ContinuousClock.now
        let polling = Set(mapPolls.values.map(\.source))
        for index in pool.sources.indices where !polling.contains(index) {
            let source = pool.sources[index]
            guard source.isUsable, !source.isFallback, source.notBefore.map({ $0 <= now }) ?? true else { continue }
            switch source.holdings {
            case .everything: continue
            case .pieces(let map) where map.isComplete: continue  // a whole peer: still a peer
            case .unknown, .pieces: break
            }
            if let last = mapPolledAt[index], now - last < options.pieceMapRefresh { continue }
            var request = CurlRequestOptions()
            request.connectTimeoutMs = options.connectTimeoutMs
            request.lowSpeedSeconds = options.stallSeconds
            let url = "\(source.base)\(PieceMap.path(name: manifest.name, version: manifest.version))"
            guard let transfer = try? CurlTransfer(url: url, sink: .memory(limit: manifest.totalPieces + 16), options: request)
            else { continue }
            mapPolls[ObjectIdentifier(transfer)] = (index, transfer)
            mapPolledAt[index] = now
            multi.add(transfer)
        }
    }

    /// When the next map poll is due, if any source's holdings still grow.
    private func nextMapPoll(now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        mapPolledAt.compactMap { index, last in
            switch pool.sources[index].holdings {
            case .everything: nil
            case .pieces(let map) where map.isComplete: nil
            case .unknown, .pieces: pool.sources[index].isUsable ? last + options.pieceMapRefresh : nil
            }
        }.min()
    }

    /// A map answer: the pieces the source holds. A source that publishes no maps (an origin,
    /// nginx: 404) holds everything; one that cannot be reached is failed like for a piece.
    private func settleMap(_ index: Int, _ transfer: CurlTransfer, _ outcome: CurlOutcome) {
        switch outcome {
        case .completed(200) where transfer.statusWasAccepted:
            guard let map = PieceMap(text: transfer.body, count: manifest.totalPieces) else {
                return pool.failed(index, reason: "sent a piece map that is not one for \(manifest.totalPieces) pieces", now: .now)
            }
            pool.setHoldings(index, .pieces(map))
        case .completed(503):
            pool.unavailable(index, now: .now, patience: options.unavailablePatience)
        case .completed:
            pool.setHoldings(index, .everything)
        case .transportFailed(let message):
            pool.failed(index, reason: message, now: .now)
        case .sinkFailed(let error):
            pool.failed(index, reason: "piece map: \(error)", now: .now)
        }
    }

    /// Fills free slots: the next piece from the first source that can take it.
    private func fillSlots() throws(TransferError) {
        while inFlight.count < options.maxInFlight {
            let now = ContinuousClock.now
            if inFlight.values.contains(where: { !pool.sources[$0.source].isFallback }) { lastPrimaryActivity = now }
            guard let (piece, source) = queue.next(
                pool: pool, maxPerSource: options.maxPerSource, now: now,
                fallbacks: now - lastPrimaryActivity >= options.fallbackPatience)
            else { return }
            if !pool.sources[source].isFallback { lastPrimaryActivity = now }
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
        // The rate cap counted the whole piece when it started: give back what did not come.
        limiter?.refund(Int(max(0, flight.expected - (transfer.statusWasAccepted ? transfer.received : 0))))
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
        case .completed(429):
            // A peer whose upload slots are all taken: someone else, soon; no blame.
            pool.busy(flight.source, now: .now)
            queue.unavailable(flight.piece, at: flight.source)
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
