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
import Wire

/// `GET /v1/rollouts/{id}/events`: what happens to a rollout, as Server-Sent Events. Each
/// event's `id` is its number (1-based), its `event` the kind, its data the `RolloutEvent` JSON.
/// It replays what `Last-Event-ID` (or `?after=N`) has not seen, then follows the store, which
/// on Redis another instance may be writing: a read every quarter second, a ping every 10 s.
/// A finished rollout replays and the stream ends.
struct RolloutEventStream {
    let controlPlane: ControlPlane
    static let poll: Duration = .milliseconds(250)
    static let ping: Duration = .seconds(10)

    func respond(to request: Request, id: String) async -> Response {
        guard await controlPlane.state.rollouts[id] != nil else { return JSONResponse.error(.notFound, "no rollout '\(id)'") }
        let resume = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("after")
        let after = resume.flatMap { Int($0) }.map { max(0, $0) } ?? 0
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let controlPlane = self.controlPlane
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var sent = after
            var quietSince = ContinuousClock.now
            var idleReads = 0
            while !Task.isCancelled {
                let from = sent
                let events = (try? await NIOThreadPool.singleton.runIfActive { try controlPlane.events(of: id, after: from) }) ?? []
                if !events.isEmpty {
                    var buffer = ByteBuffer()
                    for (offset, event) in events.enumerated() {
                        buffer.writeBytes(ServerSentEvent(event: event.kind.rawValue, id: "\(from + offset + 1)", data: Self.json(event)).encoded)
                    }
                    try await writer.write(buffer)
                    sent += events.count
                    quietSince = .now
                    if events.contains(where: \.isFinal) { break }
                }
                // Finished (or dropped) with nothing more stored: a rollout from before events
                // were kept, or one whose last write is in: two quiet reads in a row end it.
                let active = await controlPlane.state.rollouts[id]?.phase.isActive ?? false
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

    static func json(_ event: RolloutEvent) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(event)) ?? Data("{}".utf8), as: UTF8.self)
    }
}
