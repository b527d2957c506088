import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `/metrics` in Prometheus text format on its own small listener (one event loop thread):
/// what a scraper reads, nothing else.
public final class MetricsServer: Sendable {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let render: @Sendable () -> String
    private let logger: Logger

    public init(render: @escaping @Sendable () -> String, logger: Logger) {
        self.render = render
        self.logger = logger
    }

    @discardableResult
    public func start(host: String, port: Int) async throws -> Int {
        let render = self.render
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(render: render))
                }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        logger.info("metrics on \(host):\(bound)/metrics")
        return bound
    }

    public func shutdown() async throws { try await group.shutdownGracefully() }
}

private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let render: @Sendable () -> String
    var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> String) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let found = head.method == .GET && head.uri.split(separator: "?").first == "/metrics"
            let body = found ? render() : "404 only /metrics is served here\n"
            var headers = HTTPHeaders([("Content-Type", found ? "text/plain; version=0.0.4" : "text/plain"),
                                       ("Content-Length", "\(body.utf8.count)")])
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: found ? .ok : .notFound, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { bound.value.close(promise: nil) }
            }
            self.head = nil
        }
    }
}
