import CLinux
import Logging
import NIOCore
import Swarm
import NIOHTTP1
import NIOPosix
import Synchronization

/// Limits and address of a range server.
public struct RangeServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port; `RangeServer.port` tells which.
    public var port: Int = 0
    /// Total upload cap over all connections, bytes per second; nil for none (zero-copy at full speed).
    public var maxUploadBytesPerSecond: Int64? = nil
    /// Connections beyond this get `503` and are closed.
    public var maxConnections: Int = 256
    /// Bodies sent at once, so an uplink serves a few pieces fast instead of many slowly; a
    /// request beyond waits in a short queue (`uploadQueuePerSlot` per slot) or gets `429` at
    /// once with when to come back (busy: ask another holder). Nil for no limit.
    public var maxConcurrentUploads: Int? = nil
    public var uploadQueuePerSlot: Int = SwarmPolicy.default.uploadQueue
    /// A connection with nothing going either way this long is closed (an availability stream
    /// sends a keep-alive every few seconds, so it is never idle).
    public var idleTimeoutSeconds: Int64 = 30
    /// Seconds a client has to send a whole request, from the connection's start or the end
    /// of the previous response (`RequestDeadline`): a slowloris cannot keep a connection.
    public var requestSeconds: Int64 = 10
    /// Seconds a client is told to wait for a piece that is not verified yet.
    public var retryAfterSeconds: Int = 1
    /// Event loop threads; the agent uses one.
    public var threads: Int = System.coreCount
    /// Bytes of a body the kernel may hold unsent when its write counts as done
    /// (TCP_NOTSENT_LOWAT): what an upload slot lets go early.
    public var unsentBytes: Int = 64 << 10
    /// Hears of a host that fetches a release's availability from this server and named its
    /// own range server (release name, version, that server's base URL at the connection's
    /// address): the agent offers it to its download of the same release.
    public var onPeerAnnounced: (@Sendable (_ name: String, _ version: String, _ url: String) -> Void)?

    public init() {}
}

/// An HTTP/1.1 server of GET and HEAD with byte ranges over a `RangeServerCatalog`, on SwiftNIO.
/// Final files go out with sendfile; files being assembled only inside verified pieces.
public final class RangeServer: Sendable {
    public let configuration: RangeServerConfiguration
    private let catalog: any RangeServerCatalog
    private let logger: Logger
    private let limiter: RateLimiter?
    private let group: MultiThreadedEventLoopGroup
    private let connections = ConnectionCounter()
    private let served = ServedBytes()
    private let uploads: UploadSlots?

    /// Body bytes of the answers given so far (what peers were sent; a cut connection counts
    /// its whole answer).
    public var bytesServed: Int64 { served.total.load(ordering: .relaxed) }
    private let channel = Mutex<(any Channel)?>(nil)

    public init(catalog: any RangeServerCatalog, configuration: RangeServerConfiguration = .init(), logger: Logger) {
        self.catalog = catalog
        self.configuration = configuration
        self.logger = logger
        self.limiter = configuration.maxUploadBytesPerSecond.map { RateLimiter(bytesPerSecond: $0) }
        self.uploads = configuration.maxConcurrentUploads.map {
            UploadSlots(limit: $0, queuePerSlot: configuration.uploadQueuePerSlot, bytesPerSecond: configuration.maxUploadBytesPerSecond)
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
    }

    /// Binds and starts serving; returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        let catalog = self.catalog, logger = self.logger, limiter = self.limiter, served = self.served, uploads = self.uploads
        let configuration = self.configuration
        let mailboxes = Dictionary(uniqueKeysWithValues: group.makeIterator().map { (ObjectIdentifier($0), LoopMailbox(eventLoop: $0)) })
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 512)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            // A body counts as sent (its upload slot frees) when the kernel has sent it, not
            // when the socket buffer took it: a write completes only once at most this much of
            // it is still unsent. Without it, a buffer of megabytes swallows several pieces at
            // once and they share the link (an upload slot in name only).
            .childChannelOption(
                ChannelOptions.Types.SocketOption(level: NIOBSDSocket.OptionLevel(rawValue: Int32(IPPROTO_TCP)),
                                                  name: NIOBSDSocket.Option(rawValue: Int32(TCP_NOTSENT_LOWAT))),
                value: configuration.unsentBytes)
            .childChannelInitializer { [connections] channel in
                let count = connections.open.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in connections.open.wrappingSubtract(1, ordering: .relaxed) }
                if count > configuration.maxConnections {
                    logger.warning("refusing connection: \(count - 1) open, limit \(configuration.maxConnections)")
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ConnectionLimitHandler(retryAfter: configuration.retryAfterSeconds))
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        IdleStateHandler(allTimeout: .seconds(configuration.idleTimeoutSeconds)))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        RequestDeadline<HTTPServerRequestPart, HTTPServerResponsePart>(
                            limit: .seconds(configuration.requestSeconds),
                            isRequestEnd: { if case .end = $0 { true } else { false } },
                            isResponseEnd: { if case .end = $0 { true } else { false } }))
                    try channel.pipeline.syncOperations.addHandler(
                        RangeRequestHandler(
                            catalog: catalog, limiter: limiter, uploads: uploads, retryAfter: configuration.retryAfterSeconds,
                            served: served, mailbox: mailboxes[ObjectIdentifier(channel.eventLoop)]!,
                            onPeerAnnounced: configuration.onPeerAnnounced, logger: logger))
                }
            }
        let bound = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        channel.withLock { $0 = bound }
        let port = bound.localAddress?.port ?? configuration.port
        logger.info("range server listening on \(configuration.host):\(port)")
        return port
    }

    /// The bound port, once started.
    public var port: Int? { channel.withLock { $0?.localAddress?.port } }

    /// Serves until the server channel closes (see `shutdown`).
    public func waitUntilClosed() async throws {
        guard let bound = channel.withLock({ $0 }) else { return }
        try await bound.closeFuture.get()
    }

    public func shutdown() async throws {
        if let bound = channel.withLock({ $0 }) { try? await bound.close() }
        try await group.shutdownGracefully()
    }
}

/// Body bytes answered, shared by every connection.
final class ServedBytes: Sendable {
    let total = Atomic<Int64>(0)
}

/// Open connections, shared by the accept path and each connection's close.
private final class ConnectionCounter: Sendable {
    let open = Atomic<Int>(0)
}

/// Answers a connection over the limit with 503 and closes it.
private final class ConnectionLimitHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let retryAfter: Int

    init(retryAfter: Int) { self.retryAfter = retryAfter }

    func channelActive(context: ChannelHandlerContext) {
        let text = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: \(retryAfter)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        let buffer = context.channel.allocator.buffer(string: text)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}
