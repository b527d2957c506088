#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Rollouts
import Synchronization
import Wire

/// `GET /v1/rollouts/{id}/events`: what happens to a rollout, as Server-Sent Events. Each
/// event's `id` is its number (1-based), its `event` the kind, its data the `RolloutEvent` JSON.
/// It replays what `Last-Event-ID` (or `?after=N`) has not seen, then follows the store, which
/// on Redis another instance may be writing: a read every half second, a ping every 10 s; at
/// most `limit` streams at once.
/// A finished rollout replays and the stream ends.
struct RolloutEventStream {
    let controlPlane: ControlPlane
    static let poll: Duration = .milliseconds(500)
    static let ping: Duration = .seconds(10)
    /// Streams open at once, at most: each reads the store twice a second.
    static let limit = 256
    static let open = Atomic<Int>(0)
    /// Events per write of a replay: a long one goes out in pieces, not one buffer.
    static let chunk = 500

    func respond(to request: Request, id: String) async -> Response {
        guard await controlPlane.phase(of: id) != nil else { return JSONResponse.error(.notFound, "no rollout '\(id)'") }
        guard Self.open.wrappingAdd(1, ordering: .relaxed).newValue <= Self.limit else {
            Self.open.wrappingSubtract(1, ordering: .relaxed)
            return JSONResponse.error(.serviceUnavailable, "\(Self.limit) event streams are open already; try again later")
        }
        let resume = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("after")
        let after = resume.flatMap { Int($0) }.map { max(0, $0) } ?? 0
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let controlPlane = self.controlPlane
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { Self.open.wrappingSubtract(1, ordering: .relaxed) }
            let encoder = JSONResponse.makeEncoder()
            var sent = after
            var quietSince = ContinuousClock.now
            var idleReads = 0
            while !Task.isCancelled {
                let from = sent
                let events = (try? await NIOThreadPool.singleton.runIfActive { try controlPlane.events(of: id, after: from) }) ?? []
                if !events.isEmpty {
                    for start in stride(from: 0, to: events.count, by: Self.chunk) {
                        var buffer = ByteBuffer()
                        for offset in start..<min(events.count, start + Self.chunk) {
                            let data = String(decoding: (try? encoder.encode(events[offset])) ?? Data("{}".utf8), as: UTF8.self)
                            buffer.writeBytes(ServerSentEvent(event: events[offset].kind.rawValue, id: "\(from + offset + 1)", data: data).encoded)
                        }
                        try await writer.write(buffer)
                    }
                    sent += events.count
                    quietSince = .now
                    if events.contains(where: \.isFinal) { break }
                }
                // Finished (or dropped) with nothing more stored: a rollout from before events
                // were kept, or one whose last write is in: two quiet reads in a row end it.
                let active = await controlPlane.phase(of: id)?.isActive ?? false
                idleReads = !active && events.isEmpty ? idleReads + 1 : 0
                if idleReads >= 2 { break }
                if ContinuousClock.now - quietSince >= Self.ping {
                    try await writer.write(ByteBuffer(bytes: ServerSentEvent.keepAlive))
                    quietSince = .now
                }
                try await Task.sleep(for: Self.poll)
            }
            try await writer.finish(nil)
        })
    }

}
