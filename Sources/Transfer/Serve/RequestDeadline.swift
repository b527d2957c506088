import NIOCore

/// Closes a connection whose client takes longer than `limit` to send a whole request (head
/// and body), counted from the connection's start or from the end of the previous response.
/// An idle timeout alone lets a client that sends a byte every few seconds (slowloris) hold a
/// connection for ever; with this each request has a deadline, so such clients cannot keep
/// the connection slots a server has. A response still going out (an availability stream, a
/// long-poll) is no request being sent: no deadline runs then.
///
/// Generic over the request and response parts, so the peer server (NIO's HTTP/1 parts) and
/// HBS (Hummingbird's) share it.
public final class RequestDeadline<Request, Response>: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = Request
    public typealias InboundOut = Request
    public typealias OutboundIn = Response
    public typealias OutboundOut = Response

    private let limit: TimeAmount
    private let isRequestEnd: (Request) -> Bool
    private let isResponseEnd: (Response) -> Bool
    private var timer: Scheduled<Void>?

    public init(limit: TimeAmount, isRequestEnd: @escaping (Request) -> Bool, isResponseEnd: @escaping (Response) -> Bool) {
        self.limit = limit
        self.isRequestEnd = isRequestEnd
        self.isResponseEnd = isResponseEnd
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    public func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isRequestEnd(unwrapInboundIn(data)) { disarm() }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if isResponseEnd(unwrapOutboundIn(data)) { arm(context) }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: limit) { context.close(promise: nil) }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}
