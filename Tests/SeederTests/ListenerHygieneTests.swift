import Foundation
import FledgeTesting
import Testing

/// The range server against slowloris (a real process): requests that trickle in a byte a
/// second and never end lose their connections at the request deadline, so they cannot hold
/// every connection slot and a real peer gets its piece.
@Suite struct RangeServerHygieneTests {
    @Test func slowClientsDoNotLockOutARealPeer() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory, binarySize: 200_000)
        // 32 slots, 64 slow clients: every slot is taken and more wait at the door.
        let seeder = try await SeederProcess.start(root: release.root.string, extra: ["--max-conns", "32"])
        defer { seeder.kill() }
        let slow = try SlowClients.start(port: seeder.port, count: 64, interval: 1, seconds: 30)
        try await Task.sleep(for: .seconds(1))

        var served: LoopbackHTTP.Response?
        for _ in 0..<60 where served?.status != 206 {
            served = try? await LoopbackHTTP.request(port: seeder.port, target: "/fledge-agent/1.1.0/fledge-agent", headers: ["Range": "bytes=0-99"])
            if served?.status != 206 { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(served?.status == 206, "a real peer is served once the slow requests' deadline passes")
        let origin = try Data(contentsOf: URL(fileURLWithPath: release.inputs["bin"]!.string))
        #expect(served?.body == Array(origin.prefix(100)))
        let report = try await slow.report()
        #expect(report.closed == report.opened, "every slow connection was closed: \(report)")
        #expect(seeder.child.isRunning, "and the server is fine")
    }
}
