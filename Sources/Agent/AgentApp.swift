import Dispatch
import Synchronization
import Glibc
import Logging
import SystemPackage
import Transfer
import Wire

/// `fledge-agent` put together: its store, the peer range server (verified releases and pieces
/// only), `/metrics`, the heartbeat loop and the upgrade executor, until SIGTERM or SIGINT, or
/// until an upgrade switched the release (then it exits cleanly and the supervisor starts the
/// new version).
public struct AgentApp: Sendable {
    public let configuration: AgentConfiguration
    public let configPath: String
    public let logger: Logger

    public init(configuration: AgentConfiguration, configPath: String, logger: Logger) {
        self.configuration = configuration
        self.configPath = configPath
        self.logger = logger
    }

    public func run() async throws {
        let keys = try configuration.trustedKeys.map { path throws(TransferError) in
            try Ed25519PublicKey(pem: String(decoding: try Files.read(FilePath(path)), as: UTF8.self))
        }
        let layout = ReleaseLayout(data: FilePath(configuration.data))
        let store = try PieceStore(root: layout.store)
        let status = AgentStatus()
        status.update { $0.held = store.completeReleases() }
        let version = AgentVersion.current
        let logger = self.logger
        let manager = ServiceManager.fromEnvironment()
        status.update {
            $0.startedAt = Int64(time(nil))
            $0.starts = Self.countStart(of: version, in: layout)
            $0.release = layout.target(of: layout.current).flatMap(\.lastComponent).map { ReleaseName.version(ofDirectory: $0.string) }
            if $0.release == version { $0.release = nil }
        }
        // Started as the release on trial: it gets ready with the first answered beat and
        // commits after its window. Started after the guard switched back: report why.
        let trial = ReleaseTrial.pending(in: layout, version: version, configPath: configPath, logger: logger).map {
            ReleaseTrial(pending: $0, layout: layout, configuration: configuration, logger: logger)
        }
        if let trial {
            logger.info("\(trial.pending.version) is on trial: ready once HBS answers, committed after \(configuration.commitSeconds) s of health")
            status.update { $0.state = .confirming; $0.rolloutId = trial.pending.rolloutId }
            Failpoint.reach("trial")
        }
        if let rollback = layout.read(RollbackRecord.self, at: layout.rollback) {
            logger.error("rolled back from \(rollback.from) to \(rollback.to): \(rollback.reason)")
            status.update {
                $0.state = .failed
                $0.rolloutId = rollback.rolloutId
                $0.error = "rolled back from \(rollback.from) to \(rollback.to): \(rollback.reason)"
            }
        }

        let peerListen = configuration.peerListen.flatMap(ListenAddress.init)
        let executor = UpgradeExecutor(
            layout: layout, configuration: configuration, configPath: configPath,
            verifier: ManifestVerifier(trusting: keys, threshold: configuration.signatureThreshold), store: store, status: status, version: version, logger: logger)
        var peerServer: RangeServer?
        var peerPort: Int?
        if let listen = peerListen {
            var settings = RangeServerConfiguration()
            settings.host = listen.host
            settings.port = listen.port
            settings.maxUploadBytesPerSecond = configuration.peerUploadBytesPerSecond
            settings.maxConnections = configuration.peerMaxConnections
            settings.maxConcurrentUploads = configuration.peerUploadSlots
            settings.uploadQueuePerSlot = configuration.swarmPolicy.uploadQueue
            settings.threads = 1
            // A host fetching from this one is downloading too: it may serve this one in turn.
            settings.onPeerAnnounced = { name, version, url in executor.announced(peer: url, name: name, version: version) }
            let server = RangeServer(catalog: PieceStoreCatalog(store: store), configuration: settings, logger: logger)
            peerPort = try await server.start()
            executor.serving(on: peerPort!)
            peerServer = server
        }
        var metricsServer: MetricsServer?
        if let listen = configuration.metricsListen.flatMap(ListenAddress.init) {
            let peers = peerServer
            let server = MetricsServer(
                render: {
                    (ProcessMetrics.current()?.prometheusText ?? "")
                        + status.prometheusText(version: version, servedBytes: peers?.bytesServed ?? 0)
                },
                logger: logger)
            try await server.start(host: listen.host, port: listen.port)
            metricsServer = server
        }

        let hostname = configuration.hostname ?? Self.systemHostname()
        logger.info("fledge-agent \(version) on \(hostname): \(keys.count) trusted key(s), \(configuration.signatureThreshold) required, beating to \(configuration.hbs.joined(separator: ", "))")
        if configuration.allowFalcon {
            logger.warning("allowFalcon is on: falcon's md5-only upgrades (no signature) will be carried out; turn it off once the fleet runs signed releases")
        }
        if configuration.fleetTokenFile != nil, configuration.hbs.contains(where: { $0.hasPrefix("http://") }) {
            logger.warning("HBS is reached over plain http: this host's credential and its orders cross the network readable; give https:// URLs (and hbsCA)")
        }
        let terminator = Terminator()
        let liveness = Liveness()
        let loop = HeartbeatLoop(
            configuration: configuration, hostname: hostname, version: version, peerPort: peerPort, status: status,
            logger: logger, liveness: liveness,
            onAnswered: {
                switch trial?.answered() {
                case .ready?:
                    manager.ready("running \(version), on trial")
                    trial?.startProbing { failure in
                        logger.error("\(version) is unhealthy: \(failure); stopping for the guard to roll it back")
                        terminator.trigger(failure: failure)
                    }
                case .committed?:
                    manager.ready("running \(version), committed")
                    status.update { $0.state = .idle; $0.rolloutId = nil }
                case .none?, nil:
                    break
                }
                if status.current.state == .failed, Files.exists(layout.rollback) {
                    Files.remove(layout.rollback)  // reported
                }
            },
            onOffer: { order in executor.offer(order) },
            onOrder: { order in await executor.execute(order) })
        if trial == nil { manager.ready("running \(version)") }
        let watchdog = manager.watchdogInterval.map { interval in
            Task {
                while !Task.isCancelled {
                    if liveness.isAlive { manager.watchdog() }
                    try? await Task.sleep(for: interval / 3)
                }
            }
        }
        let beats = Task {
            await loop.run()
            terminator.trigger()  // switched: exit so the supervisor starts the new version
        }
        await terminator.wait()
        logger.info("stopping")
        manager.stopping()
        trial?.stop(cleanly: terminator.failure == nil)
        // Not waiting for the beat in flight: a long-poll may hold it for a minute, and the
        // process must stop promptly.
        beats.cancel()
        watchdog?.cancel()
        try? await peerServer?.shutdown()
        try? await metricsServer?.shutdown()
        if let failure = terminator.failure { throw AgentRunError.unhealthy(failure) }
    }

    /// Counts this start in `DATA/starts` ("VERSION COUNT"): starts of the running version.
    static func countStart(of version: String, in layout: ReleaseLayout) -> Int {
        let words = ((try? Files.read(layout.starts)).map { String(decoding: $0, as: UTF8.self) } ?? "").split(separator: " ")
        let count = words.count == 2 && words[0] == version ? (Int(words[1].prefix { $0.isNumber }) ?? 0) + 1 : 1
        try? Files.writeAtomically(Array("\(version) \(count)\n".utf8), to: layout.starts)
        return count
    }

    static func systemHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

}

/// Why the agent ended other than by a stop or a switch.
public enum AgentRunError: Error, CustomStringConvertible {
    /// The release on trial failed its health probe: the guard rolls it back before the next start.
    case unhealthy(String)

    public var description: String {
        switch self {
        case .unhealthy(let reason): "the release on trial is unhealthy (\(reason)); the guard rolls it back at the next start"
        }
    }
}

/// Ends the agent's run: on SIGTERM or SIGINT (handled, so the agent stops cleanly instead of
/// dying), when the heartbeat loop ends after an upgrade switched the release, or when the
/// release on trial found itself unhealthy (`failure`).
final class Terminator: Sendable {
    private let once = OnceFlag()
    private let reason = Mutex<String?>(nil)
    private let continuation = Mutex<CheckedContinuation<Void, Never>?>(nil)
    private let fired = Atomic<Bool>(false)

    init() {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in trigger() }
            source.resume()
            SignalSources.keep(source)
        }
    }

    /// Why the run ended in failure, if it did.
    var failure: String? { reason.withLock { $0 } }

    func trigger(failure: String? = nil) {
        guard once.claim() else { return }
        reason.withLock { $0 = failure }
        fired.store(true, ordering: .releasing)
        take()?.resume()
    }

    /// The waiting continuation, cleared: whoever takes it resumes it, exactly once.
    private func take() -> CheckedContinuation<Void, Never>? {
        continuation.withLock { waiting in
            defer { waiting = nil }
            return waiting
        }
    }

    func wait() async {
        await withCheckedContinuation { (waiting: CheckedContinuation<Void, Never>) in
            continuation.withLock { $0 = waiting }
            if fired.load(ordering: .acquiring) { take()?.resume() }
        }
    }
}

/// True exactly once.
final class OnceFlag: Sendable {
    private let taken = Synchronization.Atomic<Bool>(false)
    func claim() -> Bool { !taken.exchange(true, ordering: .acquiringAndReleasing) }
}

/// Signal sources live as long as the process.
enum SignalSources {
    nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
    static func keep(_ source: any DispatchSourceSignal) { sources.append(source) }
}
