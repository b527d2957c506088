import Foundation

/// Raw HTTP/1.1 over a loopback socket: sends exactly the bytes a test writes (odd paths,
/// malformed headers) and reads the whole answer. For tests only.
public enum LoopbackHTTP {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: [UInt8]
        /// When the connection was made and when the answer had fully arrived.
        public var started: ContinuousClock.Instant = .now
        public var finished: ContinuousClock.Instant = .now

        public func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    /// Sends one request (`Connection: close` is added, and `Content-Length` with a body) and
    /// returns the answer. `source` picks the local address (e.g. 127.0.0.2, to stand in for a
    /// remote peer). The socket work runs on a thread of its own, never on the cooperative pool
    /// the tests share. `host`: another address of this machine to connect to (a namespaced
    /// fleet's bridge).
    public static func request(
        port: Int, host: String = Loopback.host, method: String = "GET", target: String, headers: [String: String] = [:],
        body: [UInt8]? = nil, from source: String? = nil
    ) async throws -> Response {
        try await Blocking.run {
            try requestNow(port: port, host: host, method: method, target: target, headers: headers, body: body, from: source)
        }
    }

    static func requestNow(
        port: Int, host: String = Loopback.host, method: String, target: String, headers: [String: String], body: [UInt8]? = nil,
        from source: String? = nil
    ) throws -> Response {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        let started = ContinuousClock.now
        var response = try parse(exchange(port: port, host: host, bytes: Array(text.utf8) + (body ?? []), from: source), method: method)
        response.started = started
        response.finished = .now
        return response
    }

    /// Connects to `host`:`port` (from `source`, if given), writes `bytes`, reads until the
    /// server closes.
    public static func exchange(port: Int, host: String = Loopback.host, bytes: [UInt8], from source: String? = nil) throws -> [UInt8] {
        let fd = try Loopback.connect(port: port, host: host, from: source)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }

    static func parse(_ raw: [UInt8], method: String) throws -> Response {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = raw.firstRange(of: separator) else { throw HarnessError("not an HTTP response: \(String(decoding: raw.prefix(200), as: UTF8.self))") }
        let head = String(decoding: raw[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw HarnessError("not an HTTP status line: \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: Array(raw[end.upperBound...]))
    }
}
