import Foundation
import FledgeTesting
import Logging
import SystemPackage
import Testing
@testable import Transfer
import Wire

/// The range server on a real loopback socket, spoken to byte by byte.
@Suite struct RangeServerTests {
    static let size = 200_000

    /// A root with one file, a subdirectory, a secret beside the root and a symlink out to it.
    static func withServer(
        configure: (inout RangeServerConfiguration) -> Void = { _ in },
        _ body: (Int, [UInt8], TemporaryDirectory) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let root = directory.appending("root")
        try FileManager.default.createDirectory(atPath: root.appending("sub").string, withIntermediateDirectories: true)
        let file = try TemporaryDirectory(existing: root).randomFile("blob", size: size)
        _ = try directory.write("top secret", to: "secret")
        try FileManager.default.createSymbolicLink(atPath: root.appending("escape").string, withDestinationPath: directory.appending("secret").string)
        try FileManager.default.createSymbolicLink(atPath: root.appending("sub/inside").string, withDestinationPath: file.string)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file.string)))
        var configuration = RangeServerConfiguration()
        configure(&configuration)
        let server = RangeServer(catalog: try DirectoryCatalog(root: root), configuration: configuration, logger: Logger(label: "test"))
        let port = try await server.start()
        do {
            try await body(port, bytes, directory)
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    @Test func getWhole() async throws {
        try await Self.withServer { port, bytes, _ in
            let response = try await LoopbackHTTP.request(port: port, target: "/blob")
            #expect(response.status == 200)
            #expect(response.header("content-length") == "\(Self.size)")
            #expect(response.header("accept-ranges") == "bytes")
            #expect(response.header("etag")?.hasPrefix("\"") == true)
            #expect(response.body == bytes)
        }
    }

    @Test func rangeForms() async throws {
        try await Self.withServer { port, bytes, _ in
            for (header, range) in [("bytes=0-9", 0...9), ("bytes=199990-", 199_990...199_999), ("bytes=-5", 199_995...199_999),
                                    ("bytes=100-999999", 100...199_999)] {
                let response = try await LoopbackHTTP.request(port: port, target: "/blob", headers: ["Range": header])
                #expect(response.status == 206, "\(header)")
                #expect(response.header("content-range") == "bytes \(range.lowerBound)-\(range.upperBound)/\(Self.size)")
                #expect(response.header("content-length") == "\(range.count)")
                #expect(response.body == Array(bytes[range]), "\(header)")
            }
        }
    }

    @Test func unsatisfiableIs416() async throws {
        try await Self.withServer { port, _, _ in
            for header in ["bytes=200000-", "bytes=-0"] {
                let response = try await LoopbackHTTP.request(port: port, target: "/blob", headers: ["Range": header])
                #expect(response.status == 416)
                #expect(response.header("content-range") == "bytes */\(Self.size)")
            }
        }
    }

    @Test func malformedRangeIsIgnored() async throws {
        try await Self.withServer { port, bytes, _ in
            for header in ["bytes=9-1", "bytes=x-", "lines=1-2", "bytes=0-1,4-5"] {
                let response = try await LoopbackHTTP.request(port: port, target: "/blob", headers: ["Range": header])
                #expect(response.status == 200, "\(header)")
                #expect(response.body == bytes)
            }
        }
    }

    @Test func headAnswersHeadersOnly() async throws {
        try await Self.withServer { port, _, _ in
            let whole = try await LoopbackHTTP.request(port: port, method: "HEAD", target: "/blob")
            #expect(whole.status == 200)
            #expect(whole.header("content-length") == "\(Self.size)")
            #expect(whole.body.isEmpty)
            let part = try await LoopbackHTTP.request(port: port, method: "HEAD", target: "/blob", headers: ["Range": "bytes=10-19"])
            #expect(part.status == 206)
            #expect(part.header("content-length") == "10")
            #expect(part.header("content-range") == "bytes 10-19/\(Self.size)")
            #expect(part.body.isEmpty)
        }
    }

    @Test func nothingOutsideTheRoot() async throws {
        try await Self.withServer { port, bytes, _ in
            for target in ["/../secret", "/%2e%2e/secret", "/sub/../../secret", "/sub/%2E%2E/%2e%2e/secret", "/escape",
                           "//etc/passwd", "/.%2e/secret", "/sub/..%2F..%2Fsecret"] {
                let response = try await LoopbackHTTP.request(port: port, target: target)
                #expect([403, 404].contains(response.status), "\(target) answered \(response.status)")
                #expect(!String(decoding: response.body, as: UTF8.self).contains("top secret"), "\(target) leaked")
            }
            let absolute = try await LoopbackHTTP.request(port: port, target: "http://127.0.0.1/../secret")
            #expect(absolute.status == 400)
            // A symlink that stays inside the root is fine.
            let inside = try await LoopbackHTTP.request(port: port, target: "/sub/inside")
            #expect(inside.status == 200)
            #expect(inside.body == bytes)
            #expect(try await LoopbackHTTP.request(port: port, target: "/sub").status == 404, "directories are not served")
            #expect(try await LoopbackHTTP.request(port: port, target: "/missing").status == 404)
        }
    }

    @Test func onlyGetAndHead() async throws {
        try await Self.withServer { port, _, _ in
            let response = try await LoopbackHTTP.request(port: port, method: "DELETE", target: "/blob")
            #expect(response.status == 405)
            #expect(response.header("allow") == "GET, HEAD")
        }
    }

    @Test func connectionCap() async throws {
        try await Self.withServer(configure: { $0.maxConnections = 2 }) { port, _, _ in
            // Two idle connections hold both slots.
            let held = try (0..<2).map { _ in try IdleConnection(port: port) }
            try await Task.sleep(for: .milliseconds(200))
            let refused = try await LoopbackHTTP.request(port: port, target: "/blob")
            #expect(refused.status == 503)
            #expect(refused.header("retry-after") == "1")
            held.forEach { $0.close() }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await LoopbackHTTP.request(port: port, target: "/blob").status == 200)
        }
    }

    /// The cap is total: two clients together get the configured rate, within 10 %.
    @Test func uploadCapHolds() async throws {
        let cap: Int64 = 200_000
        try await Self.withServer(configure: { $0.maxUploadBytesPerSecond = cap }) { port, bytes, _ in
            async let first = LoopbackHTTP.request(port: port, target: "/blob")
            async let second = LoopbackHTTP.request(port: port, target: "/blob", headers: ["Range": "bytes=0-"])
            let (a, b) = try await (first, second)
            // Timed on the client threads themselves, from the first connect to the last byte.
            let elapsed = (max(a.finished, b.finished) - min(a.started, b.started)).seconds
            #expect(a.body == bytes)
            #expect(b.body == bytes)
            let rate = Double(a.body.count + b.body.count) / elapsed
            #expect(rate > Double(cap) * 0.9 && rate < Double(cap) * 1.1, "measured \(Int(rate)) B/s against a cap of \(cap)")
        }
    }
}

extension RangeServerTests {
    /// Shutting down while a capped body is still being paced out (an agent exiting into its
    /// new version while peers fetch from it): the connection ends, the files close, no crash.
    @Test func shutdownWhilePacingABody() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try directory.randomFile("blob", size: Self.size)
        var configuration = RangeServerConfiguration()
        configuration.maxUploadBytesPerSecond = 50_000
        let server = RangeServer(catalog: try DirectoryCatalog(root: FilePath(directory.string)), configuration: configuration,
                                 logger: Logger(label: "test"))
        let port = try await server.start()
        let client = Task { try? await LoopbackHTTP.request(port: port, target: "/blob") }
        try await Task.sleep(for: .milliseconds(500))
        try await server.shutdown()
        let answer = await client.value
        #expect((answer?.body.count ?? 0) < Self.size, "cut short, not finished")
    }
}

/// A connection that says nothing, to hold a server slot.
final class IdleConnection {
    let fd: Int32
    init(port: Int) throws { fd = try Loopback.connect(port: port) }
    func close() { Glibc.close(fd) }
}
