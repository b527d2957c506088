import Foundation

/// One streamed HTTP answer over a loopback socket, read as it arrives: what an availability
/// stream (Server-Sent Events) sends is checked event by event, without waiting for an end
/// that may never come. For tests only.
public final class LoopbackStream: @unchecked Sendable {
    private let fd: Int32
    /// Everything received so far (head and body, chunk framing included).
    public private(set) var received: [UInt8] = []
    /// The server closed the connection.
    public private(set) var ended = false

    /// Connects and sends `GET target` with `headers`.
    public init(port: Int, target: String, headers: [String: String] = [:]) throws {
        fd = try Loopback.connect(port: port)
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var text = "GET \(target) HTTP/1.1\r\nHost: \(Loopback.host):\(port)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { close(fd) }

    public var text: String { String(decoding: received, as: UTF8.self) }

    /// Reads until `condition` holds on what arrived (or the server ends the answer), at most
    /// `seconds`; whether it held. Blocks its thread: call it through `Blocking.run`.
    public func read(seconds: Double = 5, until condition: (String) -> Bool) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !condition(text) && !ended && ContinuousClock.now < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                received.append(contentsOf: buffer[0..<n])
            } else if n == 0 {
                ended = true
            }
        }
        return condition(text)
    }
}
