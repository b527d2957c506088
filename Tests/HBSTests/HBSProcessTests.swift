import Foundation
import FledgeTesting
import Testing

/// `fledge-hbs` as a real process: falcon's admin API as its users call it (with curl), every
/// bad input refused with its 4xx and nothing changed, authority, and kill -9 mid-rollout.
@Suite struct HBSProcessTests {
    static let md5 = "35ac8534c0b31237e844ef8ee2bb9b9e"

    static func beat(_ host: String, version: String = "6.0.0", state: String = "idle", rollout: String? = nil) -> String {
        let rolloutField = rollout.map { ",\"rolloutId\":\"\($0)\"" } ?? ""
        return "{\"hostname\":\"\(host)\",\"ip\":\"127.0.0.1\",\"version\":\"\(version)\",\"labels\":{},\"state\":\"\(state)\",\"held\":[]\(rolloutField)}"
    }

    static func curl(_ arguments: [String]) async throws -> [String: Any] {
        let (stdout, _) = try await ChildProcess.run(try Binaries.tool("curl"), ["-s", "--noproxy", "*"] + arguments)
        return try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
    }

    /// The seed's four calls, with curl, and falcon's answers.
    @Test func falconAdminAPIAsItsUsersCallIt() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let hbs = try await HBSProcess.start(data: data.string)
        defer { hbs.kill() }
        #expect(try await hbs.beat(Self.beat("n3-021-225")).status == 200)
        let base = "http://127.0.0.1:\(hbs.adminPort)"

        let posted = try await Self.curl(["-X", "POST", "-H", "Content-Type: application/json", "-d",
            "{\"wgeturl\":\"http://CDN/file/open-falcon\",\"version\":\"6.0.1\",\"binfile_md5\":\"\(Self.md5)\"}",
            "\(base)/agent/upgrade"])
        #expect(posted["msg"] as? String == "success")

        let now = try await Self.curl(["\(base)/agent/upgrade/nowargs"])
        #expect(now["msg"] as? String == "success")
        let args = try #require(now["data"] as? [String: Any])
        #expect(args["type"] as? Int == 0)
        #expect(args["wgeturl"] as? String == "http://CDN/file/open-falcon")
        #expect(args["version"] as? String == "6.0.1")
        #expect(args["binfile_md5"] as? String == Self.md5)
        #expect(args["cfgfile_md5"] as? String == "")

        // The agent on the old version gets falcon's order: one URL, md5.
        let reply = try #require(try await hbs.beat(Self.beat("n3-021-225")).body as? [String: Any])
        let order = try #require(reply["order"] as? [String: Any])
        #expect(order["version"] as? String == "6.0.1")
        #expect(order["sources"] as? [String] == ["http://CDN/file/open-falcon"])

        let versions = try await Self.curl(["\(base)/agentversions"])
        #expect(versions["msg"] as? String == "success")
        #expect((versions["data"] as? [String: String]) == ["n3-021-225": "6.0.0"])

        let deleted = try await Self.curl(["-X", "DELETE", "\(base)/agent/upgrade"])
        #expect(deleted["msg"] as? String == "success")
        #expect(deleted["data"] as? String == "取消升级成功", "falcon's own words")
        let after = try await Self.curl(["\(base)/agent/upgrade/nowargs"])
        #expect((after["data"] as? [String: Any])?["version"] as? String == "")
    }

    /// Each bad input gets its 4xx with falcon's error envelope, and changes nothing.
    @Test func badInputsAreRefusedAndChangeNothing() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let token = try data.write(String(repeating: "s3cret-", count: 4), to: "admin.token")
        // Only 127.0.0.1 itself is trusted; 127.0.0.2 stands in for a remote peer.
        let hbs = try await HBSProcess.start(data: data.appending("hbs").string,
                                             extra: ["--admin-allow", "127.0.0.1/32", "--admin-token-file", token.string])
        defer { hbs.kill() }
        let good = "{\"wgeturl\":\"http://cdn/x\",\"version\":\"6.0.1\",\"binfile_md5\":\"\(Self.md5)\"}"
        let cases: [(String, String?, [String: String], String?, Int, String)] = [
            ("bad json", "{\"wgeturl\":", [:], nil, 400, "bad json"),
            ("missing version", "{\"wgeturl\":\"http://cdn/x\",\"binfile_md5\":\"\(Self.md5)\"}", [:], nil, 400, "missing version"),
            ("missing md5", "{\"wgeturl\":\"http://cdn/x\",\"version\":\"6.0.1\"}", [:], nil, 400, "missing binfile_md5"),
            ("config without cfg md5", "{\"type\":2,\"wgeturl\":\"http://cdn/x\",\"version\":\"6.0.1\",\"binfile_md5\":\"\(Self.md5)\"}", [:], nil, 400, "missing cfgfile_md5"),
            ("type 3", "{\"type\":3,\"wgeturl\":\"http://cdn/x\",\"version\":\"6.0.1\",\"binfile_md5\":\"\(Self.md5)\"}", [:], nil, 400, "type must be"),
            ("remote without token", good, [:], "127.0.0.2", 403, "forbidden"),
            ("remote with a wrong token", good, ["Authorization": "Bearer wrong-wrong-wrong-wrong"], "127.0.0.2", 403, "forbidden"),
        ]
        for (name, body, headers, source, status, message) in cases {
            let (got, json) = try await hbs.admin("POST", "/agent/upgrade", json: body, headers: headers, from: source)
            #expect(got == status, "\(name): \(got)")
            let envelope = json as? [String: Any]
            #expect((envelope?["msg"] as? String)?.contains(message) == true, "\(name): \(String(describing: envelope))")
            #expect(envelope?.keys.contains("data") == true && envelope?["data"] is NSNull, "\(name): data is null")
        }
        let (deleteStatus, _) = try await hbs.admin("DELETE", "/agent/upgrade", from: "127.0.0.2")
        #expect(deleteStatus == 403, "falcon left DELETE open; we do not")
        let (remoteRead, _) = try await hbs.admin("GET", "/agent/upgrade/nowargs", from: "127.0.0.2")
        #expect(remoteRead == 403, "reads need the same authority as changes")
        let (healthz, _) = try await hbs.admin("GET", "/healthz", from: "127.0.0.2")
        #expect(healthz == 200, "/healthz is open")
        let (_, now) = try await hbs.admin("GET", "/agent/upgrade/nowargs")
        #expect(((now as? [String: Any])?["data"] as? [String: Any])?["version"] as? String == "", "nothing changed")
        let (rollouts, list) = try await hbs.admin("GET", "/v1/rollouts")
        #expect(rollouts == 200)
        #expect((list as? [Any])?.isEmpty == true)

        // The right token from the remote peer is accepted.
        let tokenText = try String(contentsOfFile: token.string, encoding: .utf8)
        let (accepted, _) = try await hbs.admin("POST", "/agent/upgrade", json: good, headers: ["Authorization": "Bearer \(tokenText)"], from: "127.0.0.2")
        #expect(accepted == 200)
        // A bad POST now must not cancel the running upgrade.
        let (refused, _) = try await hbs.admin("POST", "/agent/upgrade", json: "{\"wgeturl\":\"http://cdn/x\",\"version\":\"6.0.2\",\"binfile_md5\":\"nothex\"}")
        #expect(refused == 400)
        let (_, still) = try await hbs.admin("GET", "/agent/upgrade/nowargs")
        #expect(((still as? [String: Any])?["data"] as? [String: Any])?["version"] as? String == "6.0.1", "the running upgrade stands")

        // v1 validation names the field.
        let (invalid, problem) = try await hbs.admin("POST", "/v1/rollouts", json: "{\"release\":{\"name\":\"fledge-agent\",\"version\":\"1.x..\"},\"sources\":[{\"url\":\"http://cdn\",\"capacityMbps\":100}]}")
        #expect(invalid == 400)
        #expect((problem as? [String: Any])?["field"] as? String == "release.version")
        let (badBeat, _) = try await hbs.beat("{\"hostname\":\"\"}", as: "n3-021-225")
        #expect(badBeat == 400)
    }

    /// An idle agent that beats with `?wait=` gets its order within moments of the rollout's
    /// creation, not at its next slow beat.
    @Test func longPollDeliversOrdersAtOnce() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let hbs = try await HBSProcess.start(data: data.string)
        defer { hbs.kill() }
        let first = try #require(try await hbs.beat(Self.beat("idle", version: "1.0.0")).body as? [String: Any])
        #expect(first["nextBeatSeconds"] as? Double == 60, "an idle fleet beats slowly")
        let started = ContinuousClock.now
        async let waiting = LoopbackHTTP.request(
            port: hbs.agentPort, method: "POST", target: "/v1/heartbeat?wait=30",
            headers: ["Content-Type": "application/json", "Fledge-Host": "idle", "Authorization": "Bearer \(try await hbs.secret(of: "idle"))"],
            body: Array(Self.beat("idle", version: "1.0.0").utf8))
        try await Task.sleep(for: .milliseconds(500))
        let rollout = #"{"release":{"name":"fledge-agent","version":"2.0.0"},"sources":[{"url":"http://cdn.test","capacityMbps":10000}]}"#
        let (created, _) = try await hbs.admin("POST", "/v1/rollouts", json: rollout)
        #expect(created == 201)
        let reply = try await waiting
        let elapsed = ContinuousClock.now - started
        let json = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any]
        // A wait that ran out would answer without an order (and nextBeatSeconds 0), after 30 s.
        #expect((json?["order"] as? [String: Any])?["version"] as? String == "2.0.0")
        #expect(elapsed < .seconds(20), "answered when the rollout started (well before the wait's 30 s), after \(elapsed)")
    }

    /// kill -9 mid-rollout, start again on the same data: the rollout goes on where it was and
    /// no host is admitted twice.
    @Test func rolloutSurvivesKillNine() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        var hbs = try await HBSProcess.start(data: data.string)
        for host in ["a", "b", "c"] { _ = try await hbs.beat(Self.beat(host, version: "1.0.0")) }
        let (created, rollout) = try await hbs.admin("POST", "/v1/rollouts", json: """
            {"release":{"name":"fledge-agent","version":"2.0.0"},"sources":[{"url":"http://cdn.test","capacityMbps":10000}],"maxConcurrent":1,"failureBudget":3}
            """)
        #expect(created == 201)
        let id = try #require((rollout as? [String: Any])?["id"] as? String)
        var ordered: [String] = []
        for host in ["a", "b", "c"] {
            let reply = try await hbs.beat(Self.beat(host, version: "1.0.0")).body as? [String: Any]
            if reply?["order"] is [String: Any] { ordered.append(host) }
        }
        #expect(ordered.count == 1)
        let first = try #require(ordered.first)
        _ = try await hbs.beat(Self.beat(first, version: "1.0.0", state: "downloading", rollout: id))

        hbs.kill()
        // The hosts' credentials are as durable as the rollout: they beat on with them.
        hbs = try await HBSProcess.start(data: data.string, secrets: hbs.secrets)
        defer { hbs.kill() }

        // Still the only one admitted: the others wait, it carries on.
        for host in ["a", "b", "c"] where host != first {
            let reply = try await hbs.beat(Self.beat(host, version: "1.0.0")).body as? [String: Any]
            #expect(reply?["order"] == nil || reply?["order"] is NSNull, "\(host) admitted past the limit after the restart")
        }
        let (_, summary) = try await hbs.admin("GET", "/v1/rollouts/\(id)")
        let counts = (summary as? [String: Any])?["counts"] as? [String: Int]
        #expect(counts?["downloading"] == 1)
        _ = try await hbs.beat(Self.beat(first, version: "2.0.0", state: "confirming", rollout: id))
        _ = try await hbs.beat(Self.beat(first, version: "2.0.0"))
        let next = try await hbs.beat(Self.beat(first, version: "2.0.0")).body as? [String: Any]
        #expect(next?["order"] == nil || next?["order"] is NSNull, "never upgraded twice")
        var admittedNow = 0
        for host in ["a", "b", "c"] where host != first {
            let reply = try await hbs.beat(Self.beat(host, version: "1.0.0")).body as? [String: Any]
            if reply?["order"] is [String: Any] { admittedNow += 1 }
        }
        #expect(admittedNow == 1, "the freed slot goes to the next host")
    }
}
