/// One Server-Sent Event (the `text/event-stream` format): how a peer pushes the pieces it
/// verifies to the hosts fetching from it, and how HBS can stream what happens to a rollout.
/// Plain HTTP/1.1, readable with curl, resumable with `Last-Event-ID`.
public struct ServerSentEvent: Sendable, Equatable {
    public var event: String?
    public var id: String?
    public var data: String

    public init(event: String? = nil, id: String? = nil, data: String) {
        self.event = event
        self.id = id
        self.data = data
    }

    /// The event on the wire: `event:`, `id:`, one `data:` line per line of data, a blank line.
    public var encoded: [UInt8] {
        var text = ""
        if let event { text += "event: \(event)\n" }
        if let id { text += "id: \(id)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
        text += "\n"
        return Array(text.utf8)
    }

    /// A comment line: ignored by readers, it keeps an idle stream visibly alive.
    public static let keepAlive: [UInt8] = Array(": ping\n\n".utf8)
}

/// Reads Server-Sent Events from bytes as they arrive, in any pieces. Lines longer than
/// `maxLineBytes` (a stream that is not one, or a hostile one) stop it with an error instead of
/// growing without end.
public struct ServerSentEventParser: Sendable {
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case lineTooLong(Int)

        public var description: String {
            switch self {
            case .lineTooLong(let limit): "an event-stream line longer than \(limit) bytes"
            }
        }
    }

    public let maxLineBytes: Int
    private var line: [UInt8] = []
    private var event: String?
    private var id: String?
    private var data: [String] = []
    private var lastByteWasCR = false

    public init(maxLineBytes: Int = 1 << 20) { self.maxLineBytes = maxLineBytes }

    /// Feeds bytes; returns the events they complete.
    public mutating func feed<S: Sequence<UInt8>>(_ bytes: S) throws(ParseError) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") && lastByteWasCR {
                lastByteWasCR = false
                continue
            }
            lastByteWasCR = byte == UInt8(ascii: "\r")
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                if let complete = take(line: line) { events.append(complete) }
                line.removeAll(keepingCapacity: true)
            } else {
                guard line.count < maxLineBytes else { throw .lineTooLong(maxLineBytes) }
                line.append(byte)
            }
        }
        return events
    }

    /// One line: a field, a comment, or the blank line that dispatches the event.
    private mutating func take(line: [UInt8]) -> ServerSentEvent? {
        if line.isEmpty {
            defer { event = nil; data = [] }
            guard !data.isEmpty || event != nil else { return nil }
            return ServerSentEvent(event: event, id: id, data: data.joined(separator: "\n"))
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let field = String(decoding: line[..<colon], as: UTF8.self)
        var value = colon < line.endIndex ? line[(colon + 1)...] : []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        let text = String(decoding: value, as: UTF8.self)
        switch field {
        case "event": event = text
        case "id": id = text
        case "data": data.append(text)
        default: break
        }
        return nil
    }
}
