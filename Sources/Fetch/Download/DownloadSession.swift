import Swarm
import SystemPackage
import Transfer
import Wire

/// One run of a `ReleaseDownloader`: the I/O around a `PieceScheduler` (which decides), on one
/// libcurl multi handle driven by `step()` on one thread.
///
/// - Each peer's availability arrives on a stream it keeps open (`PieceAvailability`): a
///   snapshot, then each piece it verifies, the moment it does. A source that answers the
///   stream with 404 publishes none: an origin, it holds everything.
/// - The next piece is asked for the moment a piece lands or availability grows; the loop
///   sleeps only until the scheduler's next deadline, the rate cap, or a socket.
/// - A copy that is not a piece's first (a hedge, the endgame) goes to memory and is written
///   to the part file only once its hash matched and the other copies are stopped: one writer
///   per piece region, ever, so bytes of a loser can never land on a verified piece.
final class DownloadSession {
    /// One copy of a piece on its way.
    private struct Flight {
        let piece: PieceRef
        let global: Int
        let source: Int
        let transfer: CurlTransfer
        /// Streams to the part file (the piece's first copy), hashed on the way; else to memory.
        let hasher: Hasher?
        let range: Range<Int64>
        var expected: Int64 { Int64(range.count) }
    }

    /// One source's availability stream.
    private final class Watch {
        let source: Int
        let transfer: CurlTransfer
        var parser = ServerSentEventParser(maxLineBytes: 1 << 20)
        /// Whether it said anything valid yet (a first snapshot).
        var heard = false
        /// When it last received bytes (or opened): silent for three keep-alives, it is dead.
        var lastBytes: Double

        init(source: Int, transfer: CurlTransfer, now: Double) {
            self.source = source
            self.transfer = transfer
            lastBytes = now
        }
    }

    /// What is known of a source's stream between connections.
    private struct StreamState {
        var lastEventID: String?
        var failingSince: Double?
        var failures = 0
        var reconnectAt: Double?
        /// Complete, or an origin: nothing more to hear.
        var done = false
        /// It has spoken on a stream before: a peer, given `peerPatience` while it fails (it may
        /// be restarting). One never heard is dropped after `failureLimit` failures.
        var heard = false
    }

    private let assembly: ReleaseAssembly
    private let manifest: Manifest
    private let options: DownloadOptions
    private let onProgress: (@Sendable (DownloadProgress) -> Void)?
    private let multi: CurlMulti
    /// The rate cap is kept twice: pieces start in turn (the average), and each transfer is
    /// held to it (so one large piece does not burst past it).
    private let limiter: RateLimiter?
    private let started = ContinuousClock.now
    private let resumedBytes: Int64

    private var scheduler: PieceScheduler
    private var flights: [ObjectIdentifier: Flight] = [:]
    private var watches: [ObjectIdentifier: Watch] = [:]
    /// Streams that received bytes since they were last read.
    private var streamsWithNews: [ObjectIdentifier] = []
    /// When the streams' liveness is next checked.
    private var nextStreamCheck = Double(PieceAvailability.keepAliveSeconds)
    private var streams: [Int: StreamState] = [:]
    private var rateWait: Duration?
    private var receivedBytes: Int64 = 0
    private var fetchedBytes: Int64 = 0
    private var secondCopies = 0
    private var deliveries: [PieceDelivery] = []
    private var reportedDrops = 0

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
        self.resumedBytes = assembly.verifiedBytes
        scheduler = PieceScheduler(
            pieceCount: manifest.totalPieces, have: assembly.verifiedPieces, policy: options.policy,
            seed: options.tieSeed ?? .random(in: .min ... .max), share: options.seedShare, now: 0)
        for base in sources { add(base, fallback: false) }
        for base in fallbacks { add(base, fallback: true) }
    }

    var isDone: Bool { scheduler.isComplete }

    /// Seconds since the session began: the scheduler's clock.
    private var now: Double { (ContinuousClock.now - started).seconds }

    /// Sources named after the download began (more peers from HBS).
    func add(sources: [String]) {
        for base in sources { add(base, fallback: false) }
    }

    /// Peers that announced themselves while fetching from this host (they hold pieces of the
    /// release, or will): taken in as the policy allows.
    func add(announced: [String]) {
        for base in announced {
            guard let index = scheduler.addAnnouncedPeer(base) else { continue }
            streams[index] = StreamState()
            openStream(index)
        }
    }

    private func add(_ base: String, fallback: Bool) {
        guard let index = scheduler.addSource(base, fallback: fallback), !fallback else { return }
        streams[index] = StreamState()
        openStream(index)
    }

    /// Stops what is still in flight once the download is over (streams, second copies).
    func finish() {
        for watch in watches.values { multi.remove(watch.transfer) }
        watches = [:]
        for flight in flights.values { multi.remove(flight.transfer) }
        flights = [:]
    }

    /// Starts what can start, moves the transfers on, settles what ended, and waits for the
    /// next thing to happen (a socket, a deadline, the rate cap).
    func step() throws(TransferError) {
        let clock = now
        reopenStreams(now: clock)
        checkStreams(now: clock)
        abortExpired(now: clock)
        // Availability news held while every slot was busy is read before anything is decided.
        if multi.isHoldingBackground && !mustWait(now: clock) {
            multi.holdBackground(false)
            try pump(timeoutMs: 0)
        }
        try fill(now: clock)
        if flights.isEmpty && watches.isEmpty && scheduler.allSourcesRemoved {
            throw .allSourcesFailed(scheduler.dropped)
        }
        // News can change nothing while every slot is busy or the cap makes the next piece
        // wait: it is read then, not now (no wake-up per peer's piece).
        multi.holdBackground(mustWait(now: clock))
        try pump(timeoutMs: pollTimeout(now: clock))
        rateWait = nil
        reportDrops()
        if scheduler.allSourcesRemoved && !scheduler.isComplete && flights.isEmpty {
            throw .allSourcesFailed(scheduler.dropped)
        }
    }

    /// Whether nothing new can start before a copy lands, a deadline or the cap's turn.
    private func mustWait(now: Double) -> Bool {
        (limiter.map { $0.delay > .zero } ?? false) || scheduler.isSaturated(now: now)
    }

    /// Waits up to `timeoutMs` for a socket or timer, lets libcurl move the transfers, and
    /// takes in what arrived: availability news, and the transfers that ended.
    private func pump(timeoutMs: Int32) throws(TransferError) {
        multi.poll(timeoutMs: timeoutMs)
        multi.perform()
        let clock = now
        readStreams(now: clock)
        for (transfer, outcome) in multi.takeFinished() {
            let key = ObjectIdentifier(transfer)
            if let watch = watches.removeValue(forKey: key) {
                streamEnded(watch, outcome, now: clock)
            } else if let flight = flights.removeValue(forKey: key) {
                try settle(flight, outcome, now: clock)
            }
        }
    }

    /// Until the next deadline, back-off, reconnect or rate-cap turn; at most a second (the
    /// loop checks for cancellation in between).
    private func pollTimeout(now: Double) -> Int32 {
        var wake = min(scheduler.nextWake(now: now) ?? now + 1, nextStreamCheck)
        for state in streams.values { if let at = state.reconnectAt { wake = min(wake, at) } }
        if let rateWait { wake = min(wake, now + rateWait.seconds) }
        return Int32(max(1, min(1000, ((wake - now) * 1000).rounded(.up))))
    }

    // MARK: Pieces

    /// Asks for pieces while the scheduler has some and the rate cap lets them start.
    private func fill(now: Double) throws(TransferError) {
        while true {
            if let limiter {
                let delay = limiter.delay
                if delay > .zero {
                    rateWait = delay
                    return
                }
            }
            guard let assignment = scheduler.next(now: now) else { return }
            try start(assignment)
        }
    }

    private func start(_ assignment: PieceScheduler.Assignment) throws(TransferError) {
        let piece = assembly.piece(at: assignment.piece)
        let range = assembly.range(of: piece)
        _ = limiter?.admit(range.count)
        let file = manifest.files[piece.file]
        var request = CurlRequestOptions()
        request.range = range.lowerBound...(range.upperBound - 1)
        request.expectedFileSize = file.size
        request.acceptedStatuses = [206]
        request.connectTimeoutMs = options.connectTimeoutMs
        // No stall timer of libcurl's (one wake-up a second per transfer): the scheduler's
        // deadlines give a slow copy up (`expired`).
        request.lowSpeedBytes = 0
        request.maxRecvBytesPerSecond = options.maxBytesPerSecond
        let url = "\(scheduler.sources[assignment.source].url)/\(manifest.name)/\(manifest.version)/\(file.name)"
        let hasher: Hasher?
        let sink: CurlBodySink
        if assignment.kind == .fresh, let descriptor = assembly.partDescriptor(for: piece) {
            let streaming = Hasher(.sha256)
            hasher = streaming
            sink = .file(descriptor, offset: range.lowerBound, limit: Int64(range.count), hashers: [streaming])
        } else {
            hasher = nil
            sink = .memory(limit: range.count)
            secondCopies += 1
        }
        let transfer = try CurlTransfer(url: url, sink: sink, options: request)
        flights[ObjectIdentifier(transfer)] = Flight(
            piece: piece, global: assignment.piece, source: assignment.source, transfer: transfer, hasher: hasher, range: range)
        multi.add(transfer)
    }

    /// Copies in flight past their abort deadline are stopped: their source was too slow.
    private func abortExpired(now: Double) {
        for (piece, source) in scheduler.expired(now: now) {
            guard let key = flights.first(where: { $0.value.global == piece && $0.value.source == source })?.key,
                  let flight = flights.removeValue(forKey: key) else { continue }
            stop(flight)
            scheduler.failed(
                piece: piece, from: source,
                .tooSlow("\(flight.transfer.received) of \(flight.expected) bytes of \(describe(flight)) by its deadline"), now: now)
        }
    }

    /// Stops a copy in flight; the rate cap gets back what it did not use.
    private func stop(_ flight: Flight) {
        multi.remove(flight.transfer)
        receivedBytes += flight.transfer.received
        limiter?.refund(Int(max(0, flight.expected - flight.transfer.received)))
    }

    private func describe(_ flight: Flight) -> String {
        "piece \(flight.piece.index) of \(manifest.files[flight.piece.file].name)"
    }

    /// What a finished request means for its piece and its source.
    private func settle(_ flight: Flight, _ outcome: CurlOutcome, now: Double) throws(TransferError) {
        let transfer = flight.transfer
        receivedBytes += transfer.received
        // The rate cap counted the whole piece when it started: give back what did not come.
        limiter?.refund(Int(max(0, flight.expected - (transfer.statusWasAccepted ? transfer.received : 0))))
        let what = describe(flight)
        let failure: PieceScheduler.Failure
        switch outcome {
        case .completed(let status) where transfer.statusWasAccepted:
            guard transfer.received == flight.expected else {
                failure = .unreachable("sent \(transfer.received) of \(flight.expected) bytes of \(what), then stopped")
                break
            }
            let digest: String
            if let hasher = flight.hasher {
                digest = hasher.finalizeHex()
            } else {
                digest = Hex.encode(Digest.sha256(transfer.body))
                guard ReleaseAssembly.matches(digest, piece: flight.piece.index, of: manifest.files[flight.piece.file]) else {
                    failure = .corrupt("served a corrupt \(what) (HTTP \(status), sha256 \(digest.prefix(16))…)")
                    break
                }
                // A second copy won: the others stop before its bytes go where theirs went.
                stopCopies(of: flight.global)
                try assembly.write(transfer.body, of: flight.piece)
            }
            guard try assembly.accept(flight.piece, sha256: digest) else {
                failure = .corrupt("served a corrupt \(what) (HTTP \(status), sha256 \(digest.prefix(16))…)")
                break
            }
            stopCopies(of: flight.global)
            _ = scheduler.delivered(piece: flight.global, from: flight.source, bytes: flight.expected, now: now)
            deliveries.append(PieceDelivery(piece: flight.global, source: scheduler.sources[flight.source].url))
            fetchedBytes += flight.expected
            report()
            return
        case .completed(429):
            failure = .busy(retryAfter: transfer.retryAfterSeconds)
        case .completed(let status) where status == 503 || status == 404:
            failure = .missing("HTTP \(status) for \(what) it said it holds")
        case .completed(let status):
            let body = String(decoding: transfer.body.prefix(120), as: UTF8.self)
            failure = .failed("HTTP \(status) for \(what)\(body.isEmpty ? "" : ": \(body)")")
        case .invalidResponse(let problem):
            failure = .failed("\(problem) (\(what))")
        case .transportFailed(let message):
            failure = .unreachable(message)
        case .sinkFailed(.http(let detail)):
            failure = .corrupt(detail)  // it sent more than the range asked for: not a source to trust
        case .sinkFailed(let error):
            throw error  // our disk, not their fault: stop, keep the verified pieces
        }
        scheduler.failed(piece: flight.global, from: flight.source, failure, now: now)
    }

    /// Stops every other copy of a piece that just landed (the scheduler counts them done).
    private func stopCopies(of piece: Int) {
        for (key, flight) in flights where flight.global == piece {
            flights[key] = nil
            stop(flight)
        }
    }

    /// Tells the caller where the download stands.
    private func report() {
        onProgress?(DownloadProgress(
            verifiedBytes: resumedBytes + fetchedBytes, totalBytes: manifest.totalSize, verifiedPieces: scheduler.have.count,
            totalPieces: manifest.totalPieces, bytesBySource: scheduler.bytesBySource, droppedSources: scheduler.dropped,
            misbehavingSources: scheduler.misbehaving))
    }

    /// A source dropped since the last report is news too.
    private func reportDrops() {
        let dropped = scheduler.sources.reduce(0) { $0 + ($1.isUsable ? 0 : 1) }
        if dropped != reportedDrops {
            reportedDrops = dropped
            report()
        }
    }

    // MARK: Availability

    private func openStream(_ index: Int) {
        guard scheduler.sources[index].isUsable, var state = streams[index], !state.done else { return }
        state.reconnectAt = nil
        streams[index] = state
        var request = CurlRequestOptions()
        request.connectTimeoutMs = options.connectTimeoutMs
        request.acceptedStatuses = [200]
        // Liveness is checked here (`checkStreams`), not by a libcurl timer per stream.
        request.lowSpeedBytes = 0
        request.headers = ["Accept: text/event-stream"] + (state.lastEventID.map { ["Last-Event-ID: \($0)"] } ?? [])
            + (options.announcePort.map { ["\(PieceAvailability.peerPortHeader): \($0)"] } ?? [])
        let url = scheduler.sources[index].url + PieceAvailability.watchPath(name: manifest.name, version: manifest.version)
        guard let transfer = try? CurlTransfer(url: url, sink: .stream(limit: 4 << 20), options: request) else { return }
        let key = ObjectIdentifier(transfer)
        transfer.isBackground = true
        transfer.onStreamBytes = { [unowned self] in streamsWithNews.append(key) }
        watches[key] = Watch(source: index, transfer: transfer, now: now)
        multi.add(transfer)
    }

    /// Every keep-alive interval: a stream silent for three of them is closed (and reopened
    /// like one that ended), so a peer that vanished without a word is noticed.
    private func checkStreams(now: Double) {
        guard now >= nextStreamCheck else { return }
        // Held streams are not read (their bytes wait in the kernel): look again soon.
        guard !multi.isHoldingBackground else {
            nextStreamCheck = now + 1
            return
        }
        nextStreamCheck = now + Double(PieceAvailability.keepAliveSeconds)
        let silence = 3 * Double(PieceAvailability.keepAliveSeconds)
        for (key, watch) in watches where now - watch.lastBytes > silence && !streamsWithNews.contains(key) {
            watches[key] = nil
            multi.remove(watch.transfer)
            streamEnded(watch, .transportFailed("availability stream silent for \(Int(silence)) s"), now: now)
        }
    }

    private func reopenStreams(now: Double) {
        for (index, state) in streams where state.reconnectAt.map({ $0 <= now }) ?? false { openStream(index) }
    }

    /// Reads what the streams with news brought since the last look.
    private func readStreams(now: Double) {
        let keys = streamsWithNews
        streamsWithNews.removeAll(keepingCapacity: true)
        for key in keys {
            guard let watch = watches[key] else { continue }
            let bytes = watch.transfer.takeBody()
            guard !bytes.isEmpty else { continue }
            watch.lastBytes = now
            guard watch.transfer.headers["content-type"]?.hasPrefix("text/event-stream") ?? false else {
                // 200 but no event stream: a plain web server, which serves what it has.
                scheduler.setHoldings(watch.source, .everything)
                streams[watch.source]?.done = true
                watches[key] = nil
                multi.remove(watch.transfer)
                continue
            }
            read(bytes, on: watch, key: key)
        }
    }

    private func read(_ bytes: [UInt8], on watch: Watch, key: ObjectIdentifier) {
        let heardBefore = watch.heard
        do {
            for event in try watch.parser.feed(bytes) {
                guard let update = PieceAvailability.update(from: event, pieceCount: manifest.totalPieces) else {
                    return distrust(watch, key: key, reason: "sent an availability event that is not one (\(event.event ?? "no type"))")
                }
                apply(update, from: watch.source)
                watch.heard = true
                if let id = event.id { streams[watch.source]?.lastEventID = id }
            }
        } catch {
            return distrust(watch, key: key, reason: "availability stream: \(error)")
        }
        if watch.heard && !heardBefore {
            streams[watch.source]?.failingSince = nil
            streams[watch.source]?.failures = 0
            streams[watch.source]?.heard = true
        }
    }

    private func apply(_ update: PieceAvailability.Update, from source: Int) {
        switch update {
        case .snapshot(let set): scheduler.setHoldings(source, .pieces(set))
        case .have(let pieces): for piece in pieces { scheduler.sourceHas(source, piece: piece) }
        case .complete:
            scheduler.setHoldings(source, .pieces(PieceSet(full: manifest.totalPieces)))
            streams[source]?.done = true
        }
    }

    private func distrust(_ watch: Watch, key: ObjectIdentifier, reason: String) {
        watches[key] = nil
        multi.remove(watch.transfer)
        streams[watch.source]?.done = true
        scheduler.drop(watch.source, reason: reason, misbehaved: true)
    }

    /// A stream ended: an origin (4xx), a peer now complete, or one to reconnect to (with its
    /// last event id, so it says only what was missed). A peer unreachable for `peerPatience`
    /// is dropped.
    private func streamEnded(_ watch: Watch, _ outcome: CurlOutcome, now: Double) {
        let index = watch.source
        guard var state = streams[index], !state.done, scheduler.sources[index].isUsable else { return }
        switch outcome {
        case .completed(let status) where (400..<500).contains(status):
            // No availability here (404, or a CDN refusing paths it does not know): an origin,
            // which serves what it has; its piece requests tell if it does not.
            scheduler.setHoldings(index, .everything)
            state.done = true
            streams[index] = state
            return
        case .completed(200) where watch.heard:
            state.failures = 0
            state.failingSince = nil
        default:
            state.failures += 1
            let since = state.failingSince ?? now
            state.failingSince = since
            if now - since >= options.policy.peerPatience || (!state.heard && state.failures >= options.policy.failureLimit) {
                streams[index] = state
                let why: String = switch outcome {
                case .completed(let status): "HTTP \(status)"
                case .transportFailed(let message): message
                case .invalidResponse(let message): message
                case .sinkFailed(let error): "\(error)"
                }
                let misbehaved: Bool = if case .transportFailed = outcome { false } else { true }
                scheduler.drop(index, reason: "availability stream: \(why) (\(state.failures) failures in \(Int(now - since)) s)",
                               misbehaved: misbehaved)
                return
            }
        }
        // Reconnect soon: at once after a clean end, backing off (to 2 s) while it fails.
        state.reconnectAt = now + (state.failures == 0 ? 0.01 : min(2, 0.05 * Double(1 << min(state.failures, 6))))
        streams[index] = state
    }

    func result() -> DownloadReport {
        DownloadReport(
            fetchedBytes: fetchedBytes, receivedBytes: receivedBytes, resumedBytes: resumedBytes,
            bytesBySource: scheduler.bytesBySource, droppedSources: scheduler.dropped, secondCopies: secondCopies,
            deliveries: deliveries, seconds: (ContinuousClock.now - started).seconds)
    }
}
