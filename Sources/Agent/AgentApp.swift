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
        // Started after a switch: confirm with the first answered beat. Started after the guard
        // switched back: report why.
        let pending = layout.read(PendingRelease.self, at: layout.pending)
        if let pending, pending.version == version {
            logger.info("\(version) is pending: confirming with HBS")
            status.update { $0.state = .confirming; $0.rolloutId = pending.rolloutId }
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
        let loop = HeartbeatLoop(
            configuration: configuration, hostname: hostname, version: version, peerPort: peerPort, status: status,
            logger: logger,
            onAnswered: {
                let now = status.current
                if now.state == .confirming {
                    // HBS heard the new version: the switch is confirmed, the release committed.
                    layout.commit(version: version, name: configuration.releaseName)
                    status.update { $0.state = .idle; $0.rolloutId = nil }
                    logger.info("\(version) confirmed and committed")
                } else if now.state == .failed, Files.exists(layout.rollback) {
                    Files.remove(layout.rollback)  // reported
                }
            },
            onOffer: { order in executor.offer(order) },
            onOrder: { order in await executor.execute(order) })
        let beats = Task {
            await loop.run()
            terminator.trigger()  // switched: exit so the supervisor starts the new version
        }
        await terminator.wait()
        logger.info("stopping")
        // Not waiting for the beat in flight: a long-poll may hold it for a minute, and the
        // process must stop promptly.
        beats.cancel()
        try? await peerServer?.shutdown()
        try? await metricsServer?.shutdown()
    }

    static func systemHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

}

/// Ends the agent's run: on SIGTERM or SIGINT (handled, so the agent stops cleanly instead of
/// dying), or when the heartbeat loop ends after an upgrade switched the release.
final class Terminator: Sendable {
    private let once = OnceFlag()
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

    func trigger() {
        guard once.claim() else { return }
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
