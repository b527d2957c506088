import Foundation
import FledgeTesting
import Testing

/// HBS's listeners against slowloris (a real process): requests that never end are cut at the
/// request deadline on both listeners, while real beats and admin calls are answered.
@Suite struct HBSListenerHygieneTests {
    @Test func slowClientsAreCutAndBeatsGoOn() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let hbs = try await HBSProcess.start(data: data.string)
        defer { hbs.kill() }
        let onAgents = try SlowClients.start(port: hbs.agentPort, count: 64, interval: 1, seconds: 30)
        let onAdmin = try SlowClients.start(port: hbs.adminPort, count: 64, interval: 1, seconds: 30)
        try await Task.sleep(for: .seconds(1))
        #expect(try await hbs.beat(HBSProcessTests.beat("real", version: "1.0.0")).status == 200)
        #expect(try await hbs.agent("real")?["version"] as? String == "1.0.0")
        for (listener, slow) in [("agents", onAgents), ("admin", onAdmin)] {
            let report = try await slow.report()
            #expect(report.closed == report.opened, "\(listener): every slow connection was closed: \(report)")
        }
        #expect(try await hbs.beat(HBSProcessTests.beat("real", version: "1.0.0")).status == 200)
        // Oversized bodies are refused before they are read whole.
        let huge = "{\"hostname\":\"real\",\"pad\":\"" + String(repeating: "x", count: 2 << 20) + "\"}"
        #expect(try await hbs.beat(huge).status == 413)
    }
}
