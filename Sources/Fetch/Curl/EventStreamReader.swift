import Transfer
import Wire

/// Follows a Server-Sent Events stream on the calling thread (`fledgectl rollout watch`): each
/// event goes to `onEvent` as it arrives, and `onIdle` runs every quarter second between them
/// (a progress line to redraw); until the server ends the stream, either returns false, or
/// nothing (not even a ping) arrives for `silenceSeconds`.
public enum EventStreamReader {
    public static func follow(
        _ url: String, headers: [String] = [], caFile: String? = nil, silenceSeconds: Int = 60,
        onIdle: () -> Bool = { true }, onEvent: (ServerSentEvent) -> Bool
    ) throws(TransferError) {
        var options = CurlRequestOptions()
        options.headers = ["Accept: text/event-stream"] + headers
        options.caFile = caFile
        options.lowSpeedBytes = 1
        options.lowSpeedSeconds = silenceSeconds
        let transfer = try CurlTransfer(url: url, sink: .stream(limit: 4 << 20), options: options)
        let multi = try CurlMulti()
        multi.add(transfer)
        var parser = ServerSentEventParser()
        /// False once `onEvent` wants no more.
        func deliver(_ bytes: [UInt8]) throws(TransferError) -> Bool {
            guard !bytes.isEmpty else { return true }
            let events: [ServerSentEvent]
            do { events = try parser.feed(bytes) } catch { throw .http("GET \(url): \(error)") }
            for event in events where !onEvent(event) { return false }
            return true
        }
        while true {
            multi.poll(timeoutMs: 250)
            multi.perform()
            let finished = multi.takeFinished()
            guard try deliver(transfer.takeBody()), onIdle() else {
                multi.remove(transfer)
                return
            }
            guard let (_, outcome) = finished.first else { continue }
            switch outcome {
            case .completed(200): return
            case .completed(let status): throw .http("GET \(url): HTTP \(status): \(String(decoding: transfer.body.prefix(300), as: UTF8.self))")
            case .transportFailed(let message), .invalidResponse(let message): throw .http("GET \(url): \(message)")
            case .sinkFailed(let error): throw error
            }
        }
    }
}
