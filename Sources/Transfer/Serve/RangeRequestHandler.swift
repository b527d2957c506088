import Logging
import NIOCore
import NIOHTTP1
import SystemPackage

/// Answers one connection's GET and HEAD requests from a catalog: 200 whole, 206 for a range,
/// 416 for an unsatisfiable one, 503 + Retry-After for pieces not verified yet, 403 for paths
/// that try to leave the root, 404, 405. Bodies are `FileRegion`s (sendfile); under an upload
/// cap they go in paced chunks.
final class RangeRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let catalog: any RangeServerCatalog
    private let limiter: RateLimiter?
    private let uploads: UploadSlots?
    private let retryAfter: Int
    private let served: ServedBytes
    private let logger: Logger
    private var head: HTTPRequestHead?

    init(
        catalog: any RangeServerCatalog, limiter: RateLimiter?, uploads: UploadSlots? = nil, retryAfter: Int, served: ServedBytes,
        logger: Logger
    ) {
        self.catalog = catalog
        self.limiter = limiter
        self.uploads = uploads
        self.retryAfter = retryAfter
        self.served = served
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
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
        if let release = PieceMap.release(in: components), let map = catalog.pieceMap(name: release.name, version: release.version) {
            return sendText(map.text, request: request, context: context)
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

        let file: NIOFileHandle?
        if request.method == .GET, let _ = range {
            if let uploads, !uploads.take() {
                headers.add(name: "Retry-After", value: "\(retryAfter)")
                return sendStatus(.tooManyRequests, request: request, context: context, headers: headers,
                                  reason: "busy: all \(uploads.limit) upload slots in use")
            }
            do {
                file = try NIOFileHandle(_deprecatedPath: path.string)
            } catch {
                uploads?.release()
                logger.error("cannot open \(path): \(error)")
                return sendStatus(.internalServerError, request: request, context: context)
            }
        } else {
            file = nil
        }
        log(request, status: status, bytes: file == nil ? 0 : length)
        if file != nil { served.total.add(length, ordering: .relaxed) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        guard let file, let range else { return finish(request, context: context) }
        sendBody(file: file, from: range.lowerBound, to: range.upperBound + 1, request: request, context: context)
    }

    /// Writes `[start, end)` of the file: one region at full speed, paced chunks under a cap.
    private func sendBody(file: NIOFileHandle, from start: Int64, to end: Int64, request: HTTPRequestHead, context: ChannelHandlerContext) {
        guard let limiter else {
            let region = FileRegion(fileHandle: file, readerIndex: Int(start), endIndex: Int(end))
            context.write(wrapOutboundOut(.body(.fileRegion(region)))).whenComplete { _ in self.close(file) }
            return finish(request, context: context)
        }
        sendPaced(file: file, at: start, end: end, limiter: limiter, request: request, context: context)
    }

    /// One chunk under the upload cap, after the wait the limiter asks for; then the next.
    private func sendPaced(
        file: NIOFileHandle, at offset: Int64, end: Int64, limiter: RateLimiter,
        request: HTTPRequestHead, context: ChannelHandlerContext
    ) {
        guard context.channel.isActive else { close(file); return }
        guard offset < end else {
            close(file)
            return finish(request, context: context)
        }
        let size = min(Int64(limiter.chunkSize), end - offset)
        let delay = limiter.reserve(Int(size))
        let write = {
            let region = FileRegion(fileHandle: file, readerIndex: Int(offset), endIndex: Int(offset + size))
            context.writeAndFlush(self.wrapOutboundOut(.body(.fileRegion(region)))).assumeIsolated().whenComplete { result in
                guard case .success = result else { self.close(file); return }
                self.sendPaced(file: file, at: offset + size, end: end, limiter: limiter, request: request, context: context)
            }
        }
        if delay <= .zero {
            write()
        } else {
            let scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds), write)
            // A server shutting down cancels the wait: the file is closed all the same.
            scheduled.futureResult.assumeIsolated().whenFailure { _ in self.close(file) }
        }
    }

    /// The body is over (sent, cut, or the server stops): its file closes, its slot frees.
    private func close(_ file: NIOFileHandle) {
        guard file.isOpen else { return }
        try? file.close()
        uploads?.release()
    }

    private func finish(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = request.isKeepAlive
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { bound.value.close(promise: nil) }
        }
    }

    /// A small body from memory (a piece map), not logged: peers poll it several times a second.
    private func sendText(_ body: [UInt8], request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")])
        headers.add(name: "Content-Length", value: "\(request.method == .HEAD ? 0 : body.count)")
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        finish(request, context: context)
    }

    private func sendStatus(
        _ status: HTTPResponseStatus, request: HTTPRequestHead, context: ChannelHandlerContext,
        headers: HTTPHeaders = [:], extra: [(String, String)] = [], reason: String? = nil
    ) {
        var headers = headers
        for (name, value) in extra { headers.add(name: name, value: value) }
        let body = "\(status.code) \(reason ?? status.reasonPhrase)\n"
        headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.replaceOrAdd(name: "Content-Length", value: "\(request.method == .HEAD ? 0 : body.utf8.count)")
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        log(request, status: status, bytes: 0, reason: reason)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        finish(request, context: context)
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
