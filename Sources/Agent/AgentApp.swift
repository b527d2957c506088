import Dispatch
import Synchronization
import Glibc
import Logging
import SystemPackage
import Transfer
import Wire

/// `fledge-agent` put together: its store, the peer range server (verified releases and pieces
/// only), `/metrics`, and the heartbeat loop, until SIGTERM or SIGINT.
public struct AgentApp: Sendable {
    public let configuration: AgentConfiguration
    public let logger: Logger

    public init(configuration: AgentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let keys = try configuration.trustedKeys.map { path throws(TransferError) in
            try Ed25519PublicKey(pem: String(decoding: try Files.read(FilePath(path)), as: UTF8.self))
        }
        let store = try PieceStore(root: FilePath(configuration.data).appending("store"))
        let status = AgentStatus()
        status.update { $0.held = store.completeReleases() }
        let version = AgentVersion.current

        var peerServer: RangeServer?
        var peerPort: Int?
        if let listen = configuration.peerListen.flatMap(ListenAddress.init) {
            var settings = RangeServerConfiguration()
            settings.host = listen.host
            settings.port = listen.port
            settings.maxUploadBytesPerSecond = configuration.peerUploadBytesPerSecond
            settings.maxConnections = configuration.peerMaxConnections
            settings.threads = 1
            let server = RangeServer(catalog: PieceStoreCatalog(store: store), configuration: settings, logger: logger)
            peerPort = try await server.start()
            peerServer = server
        }
        var metricsServer: MetricsServer?
        if let listen = configuration.metricsListen.flatMap(ListenAddress.init) {
            let server = MetricsServer(
                render: { (ProcessMetrics.current()?.prometheusText ?? "") + status.prometheusText(version: version) },
                logger: logger)
            try await server.start(host: listen.host, port: listen.port)
            metricsServer = server
        }

        let hostname = configuration.hostname ?? Self.systemHostname()
        logger.info("fledge-agent \(version) on \(hostname): \(keys.count) trusted key(s), beating to \(configuration.hbs.joined(separator: ", "))")
        let logger = self.logger
        let loop = HeartbeatLoop(
            configuration: configuration, hostname: hostname, version: version, peerPort: peerPort, status: status,
            logger: logger
        ) { order in
            // Carrying orders out (fetch, verify, stage, swap, restart, confirm) arrives with the
            // upgrade executor; until then an order is logged and left to its lease.
            logger.warning("order for \(order.name) \(order.version) (rollout \(order.rolloutId)) not carried out: this build has no upgrade executor yet")
        }
        let beats = Task { await loop.run() }
        await Self.waitForTermination()
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

    /// Returns on SIGTERM or SIGINT (handled, so the agent stops cleanly instead of dying).
    static func waitForTermination() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            for number in [SIGTERM, SIGINT] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { if once.claim() { continuation.resume() } }
                source.resume()
                SignalSources.keep(source)
            }
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
