import FledgeTesting
import Foundation
import Testing

/// deploy/grafana-fledge.json queries only what a live HBS exports: a real fledge-hbs on a real
/// redis-server (so the Redis metrics exist too) with a rollout admitting a host, scraped.
@Suite struct GrafanaDashboardTests {
    static var dashboardPath: String { Binaries.deployFile("grafana-fledge.json") }

    /// Every metric name a panel's query or a variable names.
    static func queriedMetrics() throws -> Set<String> {
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dashboardPath))) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        var queries = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        queries += variables.compactMap { $0["definition"] as? String }
        #expect(panels.count >= 8 && panels.allSatisfy { !($0["targets"] as? [Any] ?? []).isEmpty }, "every panel queries something")
        let pattern = try NSRegularExpression(pattern: "\\bhbs_[a-z_]+")
        return Set(queries.flatMap { query in
            pattern.matches(in: query, range: NSRange(query.startIndex..., in: query)).map { String(query[Range($0.range, in: query)!]) }
        })
    }

    @Test func everyQueriedMetricExistsOnALiveHBS() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let redis = try await RedisProcess.start(directory: directory.string)
        defer { redis.kill() }
        let hbs = try await HBSProcess.start(data: directory.string + "/hbs", extra: ["--redis", redis.url])
        defer { hbs.kill() }
        let beat = #"{"hostname":"h1","ip":"127.0.0.1","version":"1.0.0","labels":{},"state":"idle","held":[]}"#
        _ = try await hbs.beat(beat)
        let (status, _) = try await hbs.admin("POST", "/v1/rollouts", json: #"{"release":{"name":"fledge-agent","version":"1.1.0"},"sources":[{"url":"http://127.0.0.1:1","capacityMbps":100}]}"#)
        #expect(status == 201)
        _ = try await hbs.beat(beat)
        let text = String(decoding: try await LoopbackHTTP.request(port: hbs.adminPort, target: "/metrics").body, as: UTF8.self)
        let exported = Set(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            line.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
        })
        let queried = try Self.queriedMetrics()
        #expect(queried.count >= 15, "\(queried)")
        #expect(queried.subtracting(exported).isEmpty, "queried but not exported: \(queried.subtracting(exported).sorted())")
        #expect(text.contains(#"hbs_rollout_hosts{rollout="r1",phase="admitted"} 1"#) || text.contains(#"hbs_rollout_hosts{phase="admitted",rollout="r1"} 1"#),
                "\(text.split(separator: "\n").filter { $0.contains("rollout_hosts") })")
        #expect(text.contains("hbs_admissions_total 1"), "the admission was counted")
        #expect(text.contains("hbs_heartbeat_duration_seconds_count 2"), "both beats were timed")
    }
}
