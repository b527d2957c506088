import Logging
import NIOCore
import NIOHTTP1
import SystemPackage
import Wire

/// Answers one connection's GET and HEAD requests from a catalog: 200 whole, 206 for a range,
/// 416 for an unsatisfiable one, 503 + Retry-After for pieces not verified yet, 403 for paths
/// that try to leave the root, 404, 405, 413 for a request with a body. Bodies are
/// `FileRegion`s (sendfile); under an upload cap they go in paced chunks. With upload slots, a
/// body waits in the slots' short queue or is refused (429) with when to come back.
///
/// A release's availability (`PieceAvailability`) is answered here too: the map, or a stream
/// of Server-Sent Events the connection then carries until the release is complete or the
/// reader goes away.
final class RangeRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// GET and HEAD carry no body; a client sending more than this is not one to keep talking to.
    static let maxRequestBodyBytes = 64 << 10

    private let catalog: any RangeServerCatalog
    private let limiter: RateLimiter?
    private let uploads: UploadSlots?
    private let retryAfter: Int
    private let served: ServedBytes
    /// Where availability events for this connection's streams are posted (its event loop's).
    private let mailbox: LoopMailbox
    private let onPeerAnnounced: (@Sendable (String, String, String) -> Void)?
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    /// The availability stream this connection carries, if it carries one.
    private var stream: (log: AvailabilityLog, token: Int, request: HTTPRequestHead)?
    private var keepAlive: RepeatedTask?
    /// A body waiting in the upload queue.
    private var queued: Int?

    init(
        catalog: any RangeServerCatalog, limiter: RateLimiter?, uploads: UploadSlots? = nil, retryAfter: Int, served: ServedBytes,
        mailbox: LoopMailbox, onPeerAnnounced: (@Sendable (String, String, String) -> Void)? = nil, logger: Logger
    ) {
        self.catalog = catalog
        self.limiter = limiter
        self.uploads = uploads
        self.retryAfter = retryAfter
        self.served = served
        self.mailbox = mailbox
        self.onPeerAnnounced = onPeerAnnounced
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            bodyBytes = 0
        case .body(let chunk):
            bodyBytes += chunk.readableBytes
            if bodyBytes > Self.maxRequestBodyBytes, let head {
                self.head = nil
                sendStatus(.payloadTooLarge, request: head, context: context, reason: "GET and HEAD take no body", close: true)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    /// The connection went away: its stream stops listening, its queued body stops waiting.
    func channelInactive(context: ChannelHandlerContext) {
        stopStreaming()
        if let token = queued {
            queued = nil
            uploads?.withdraw(token)
        }
        context.fireChannelInactive()
    }

    /// Idle for the idle timeout (no request, no body or stream going out): closed, so idle
    /// sockets cannot hold every connection slot.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        guard request.method == .GET || request.method == .HEAD else {
            return sendStatus(.methodNotAllowed, request: request, context: context, extra: [("Allow", "GET, HEAD")])
        }
        let components: [String]
        switch RequestPath(target: request.uri) {
        case .components(let parts): components = parts
        case .badRequest(let reason): return sendStatus(.badRequest, request: request, context: context, reason: reason)
        case .forbidden(let reason): return sendStatus(.forbidden, request: request, context: context, reason: reason)
        }
        if let release = PieceAvailability.release(in: components), catalog.publishesAvailability {
            guard let log = catalog.availability(name: release.name, version: release.version) else {
                return sendStatus(.serviceUnavailable, request: request, context: context,
                                  headers: ["Retry-After": "\(retryAfter)"], reason: "not tracking \(release.name) \(release.version) now")
            }
            if PieceAvailability.isWatch(request.uri) && request.method == .GET {
                announce(request, release: release, context: context)
                return startStream(log, request: request, context: context)
            }
            return sendText(log.isAttached ? log.current.text : [UInt8(ascii: "\n")], request: request, context: context)
        }
        guard let entry = catalog.entry(for: components) else {
            return sendStatus(.notFound, request: request, context: context)
        }

        var headers = HTTPHeaders([("Accept-Ranges", "bytes"), ("ETag", entry.etag)])
        let range: ClosedRange<Int64>?
        var isPartial = false
        switch ByteRangeRequest(header: request.headers.first(name: "range"), size: entry.size) {
        case .whole: range = entry.size > 0 ? 0...(entry.size - 1) : nil
        case .partial(let selected):
            range = selected
            isPartial = true
        case .unsatisfiable:
            headers.add(name: "Content-Range", value: "bytes */\(entry.size)")
            return sendStatus(.rangeNotSatisfiable, request: request, context: context, headers: headers)
        }

        let path: FilePath?
        switch entry.availability {
        case .complete(let file): path = file
        case .partial(let check): path = range.map(check) ?? nil
        }
        guard let path else {
            headers.add(name: "Retry-After", value: "\(retryAfter)")
            return sendStatus(.serviceUnavailable, request: request, context: context, headers: headers,
                              reason: "not verified here yet")
        }

        let status: HTTPResponseStatus = isPartial ? .partialContent : .ok
        if isPartial, let range { headers.add(name: "Content-Range", value: "bytes \(range.lowerBound)-\(range.upperBound)/\(entry.size)") }
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? 0
        headers.add(name: "Content-Length", value: "\(length)")
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        guard request.method == .GET, let range else {
            log(request, status: status, bytes: 0)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
            return finish(request, context: context)
        }
        let upload = Upload(request: request, status: status, headers: headers, path: path, range: range)
        guard let uploads else { return send(upload, context: context) }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        switch uploads.take(bytes: length, grant: {
            eventLoop.execute {
                let (handler, context) = bound.value
                handler.queued = nil
                guard context.channel.isActive else { return uploads.release(bytes: length) }
                handler.send(upload, context: context)
            }
        }) {
        case .granted:
            send(upload, context: context)
        case .queued(let token):
            queued = token
        case .refused(let milliseconds):
            sendStatus(.tooManyRequests, request: request, context: context,
                       headers: ["Retry-After": "1", "Fledge-Retry-After-Ms": "\(milliseconds)"],
                       reason: "busy: all \(uploads.limit) upload slots in use; come back in \(milliseconds) ms")
        }
    }

    /// A body to send, once it has its upload slot.
    private struct Upload {
        let request: HTTPRequestHead
        let status: HTTPResponseStatus
        let headers: HTTPHeaders
        let path: FilePath
        let range: ClosedRange<Int64>
        var length: Int64 { range.upperBound - range.lowerBound + 1 }
    }

    private func send(_ upload: Upload, context: ChannelHandlerContext) {
        let file: NIOFileHandle
        do {
            file = try NIOFileHandle(_deprecatedPath: upload.path.string)
        } catch {
            uploads?.release(bytes: upload.length)
            logger.error("cannot open \(upload.path): \(error)")
            return sendStatus(.internalServerError, request: upload.request, context: context)
        }
        log(upload.request, status: upload.status, bytes: upload.length)
        served.total.add(upload.length, ordering: .relaxed)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: upload.request.version, status: upload.status, headers: upload.headers))),
            promise: nil)
        sendBody(file: file, length: upload.length, from: upload.range.lowerBound, to: upload.range.upperBound + 1,
                 request: upload.request, context: context)
    }

    /// Writes `[start, end)` of the file: one region at full speed, paced chunks under a cap.
    private func sendBody(
        file: NIOFileHandle, length: Int64, from start: Int64, to end: Int64, request: HTTPRequestHead, context: ChannelHandlerContext
    ) {
        guard let limiter else {
            let region = FileRegion(fileHandle: file, readerIndex: Int(start), endIndex: Int(end))
            context.write(wrapOutboundOut(.body(.fileRegion(region)))).assumeIsolated().whenComplete { _ in self.close(file, length: length) }
            return finish(request, context: context)
        }
        sendPaced(file: file, length: length, at: start, end: end, limiter: limiter, request: request, context: context)
    }

    /// One chunk under the upload cap, after the wait the limiter asks for; then the next.
    private func sendPaced(
        file: NIOFileHandle, length: Int64, at offset: Int64, end: Int64, limiter: RateLimiter,
        request: HTTPRequestHead, context: ChannelHandlerContext
    ) {
        guard context.channel.isActive else { close(file, length: length); return }
        guard offset < end else {
            close(file, length: length)
            return finish(request, context: context)
        }
        let size = min(Int64(limiter.chunkSize), end - offset)
        let delay = limiter.reserve(Int(size))
        let write = {
            let region = FileRegion(fileHandle: file, readerIndex: Int(offset), endIndex: Int(offset + size))
            context.writeAndFlush(self.wrapOutboundOut(.body(.fileRegion(region)))).assumeIsolated().whenComplete { result in
                guard case .success = result else { self.close(file, length: length); return }
                self.sendPaced(file: file, length: length, at: offset + size, end: end, limiter: limiter, request: request, context: context)
            }
        }
        if delay <= .zero {
            write()
        } else {
            let scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds), write)
            // A server shutting down cancels the wait: the file is closed all the same.
            scheduled.futureResult.assumeIsolated().whenFailure { _ in self.close(file, length: length) }
        }
    }

    /// The body is over (sent, cut, or the server stops): its file closes, its slot frees.
    private func close(_ file: NIOFileHandle, length: Int64) {
        guard file.isOpen else { return }
        try? file.close()
        uploads?.release(bytes: length)
    }

    private func finish(_ request: HTTPRequestHead, context: ChannelHandlerContext, close: Bool = false) {
        let keepAlive = request.isKeepAlive && !close
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { bound.value.close(promise: nil) }
        }
    }

    // MARK: Availability

    /// Opens the connection's availability stream: what the log says first, then each event as
    /// it happens, a keep-alive comment every few seconds, until `complete` ends it.
    private func startStream(_ log: AvailabilityLog, request: HTTPRequestHead, context: ChannelHandlerContext) {
        let headers = HTTPHeaders([("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop, mailbox = self.mailbox
        let (first, token) = log.subscribe(lastEventID: request.headers.first(name: "last-event-id")) { event in
            mailbox.post {
                let (handler, context) = bound.value
                handler.deliver(event, context: context)
            }
        }
        for event in first { write(event.encoded, context: context) }
        context.flush()
        guard let token else { return finish(request, context: context) }
        stream = (log, token, request)
        let ping = TimeAmount.seconds(Int64(PieceAvailability.keepAliveSeconds))
        keepAlive = eventLoop.scheduleRepeatedTask(initialDelay: ping, delay: ping) { _ in
            let (handler, context) = bound.value
            guard handler.stream != nil, context.channel.isActive else { return }
            handler.write(ServerSentEvent.keepAlive, context: context)
            context.flush()
        }
    }

    /// A reader that names its own range server's port: that server, at the address this
    /// connection came from, is announced to the agent.
    private func announce(_ request: HTTPRequestHead, release: (name: String, version: String), context: ChannelHandlerContext) {
        guard let onPeerAnnounced, let text = request.headers.first(name: PieceAvailability.peerPortHeader),
              let port = Int(text), (1...65535).contains(port), let ip = context.channel.remoteAddress?.ipAddress
        else { return }
        onPeerAnnounced(release.name, release.version, "http://\(ip.contains(":") ? "[\(ip)]" : ip):\(port)")
    }

    /// An event from the log, on this connection's event loop.
    private func deliver(_ event: ServerSentEvent, context: ChannelHandlerContext) {
        guard let stream, context.channel.isActive else { return }
        write(event.encoded, context: context)
        context.flush()
        if event.event == "complete" {
            stopStreaming()
            finish(stream.request, context: context)
        }
    }

    private func write(_ bytes: [UInt8], context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
    }

    private func stopStreaming() {
        keepAlive?.cancel()
        keepAlive = nil
        if let stream { stream.log.unsubscribe(stream.token) }
        stream = nil
    }

    /// A small body from memory (a map), not logged: it is asked for often.
    private func sendText(_ body: [UInt8], request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")])
        headers.add(name: "Content-Length", value: "\(request.method == .HEAD ? 0 : body.count)")
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
        if request.method != .HEAD { write(body, context: context) }
        finish(request, context: context)
    }

    private func sendStatus(
        _ status: HTTPResponseStatus, request: HTTPRequestHead, context: ChannelHandlerContext,
        headers: HTTPHeaders = [:], extra: [(String, String)] = [], reason: String? = nil, close: Bool = false
    ) {
        var headers = headers
        for (name, value) in extra { headers.add(name: name, value: value) }
        let body = "\(status.code) \(reason ?? status.reasonPhrase)\n"
        headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.replaceOrAdd(name: "Content-Length", value: "\(request.method == .HEAD ? 0 : body.utf8.count)")
        if !request.isKeepAlive || close { headers.add(name: "Connection", value: "close") }
        log(request, status: status, bytes: 0, reason: reason)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD { write(Array(body.utf8), context: context) }
        finish(request, context: context, close: close)
    }

    /// One line per answer; "busy" refusals (429), which a swarm asks for often, only at debug.
    private func log(_ request: HTTPRequestHead, status: HTTPResponseStatus, bytes: Int64, reason: String? = nil) {
        logger.log(
            level: status == .tooManyRequests ? .debug : .info,
            "\(request.method) \(request.uri) \(status.code)",
            metadata: [
                "bytes": "\(bytes)", "range": "\(request.headers.first(name: "range") ?? "-")",
            ].merging(reason.map { ["reason": "\($0)"] } ?? [:]) { $1 })
    }
}
