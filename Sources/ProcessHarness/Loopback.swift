import Foundation
import Synchronization

/// TCP on 127.0.0.1, the address tests and benches use: a free port to hand to a server, a
/// connected socket, and whether something listens on a port. Each also takes another IPv4
/// address of this machine (`host`), for the one place that needs it: a namespaced local fleet,
/// whose HBS listens on its bridge's address.
public enum Loopback {
    public static let host = "127.0.0.1"

    /// A port free on `host` right now, below the kernel's ephemeral range (32768-60999 here):
    /// a port from that range may become the source port of any outgoing connection between
    /// this check and the server's bind (the server then fails to start, or a test talks to a
    /// stranger). Ports are handed out in turn from a random start, so concurrent tests in this
    /// process never get the same one; each is checked bindable. Another process may still
    /// take it before the server binds it: see `LoopbackServer`.
    public static func freePort(host: String = Loopback.host) throws -> Int {
        for _ in 0..<portRange.count {
            let port = nextPort.withLock { next in
                defer { next = next + 1 == portRange.upperBound ? portRange.lowerBound : next + 1 }
                return next
            }
            if try canBind(port: port, host: host) { return port }
        }
        throw HarnessError("no free port on \(host) in \(portRange)")
    }

    /// Where `freePort` hands out ports: clear of the ephemeral range and of the well-known ports.
    static let portRange = 20_000..<32_000
    private static let nextPort = Mutex(Int.random(in: portRange))

    private static func canBind(port: Int, host: String) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.system("socket") }
        defer { close(fd) }
        // As a server would bind it (SO_REUSEADDR: a port left in TIME_WAIT is free to listen on).
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = socketAddress(port: port, host: host)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// A socket connected to `host`:`port`, from the loopback address `source` when given (any
    /// of 127.0.0.0/8 works on Linux); the caller closes it.
    public static func connect(port: Int, host: String = Loopback.host, from source: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.system("socket") }
        if let source {
            var local = socketAddress(port: 0, host: source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                let error = HarnessError.system("bind \(source)")
                close(fd)
                throw error
            }
        }
        var address = socketAddress(port: port, host: host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = HarnessError.system("connect \(host):\(port)")
            close(fd)
            throw error
        }
        return fd
    }

    /// Whether a TCP connect to `host`:`port` succeeds.
    public static func accepts(port: Int, host: String = Loopback.host) -> Bool {
        guard let fd = try? connect(port: port, host: host) else { return false }
        close(fd)
        return true
    }

    private static func socketAddress(port: Int, host: String = Loopback.host) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }
}
