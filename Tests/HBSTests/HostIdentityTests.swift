import Foundation
import FledgeTesting
import Testing

/// Per-host identity against a real `fledge-hbs`: every beat is authenticated as the host it
/// names, forgeries (with or without the enrolment token) get 401/403 and change nothing, a
/// name binds once until an admin forgets it, and HBS lists a host at the address it came from.
@Suite struct HostIdentityTests {
    static func beat(_ host: String, version: String = "1.0.0", state: String = "idle", rollout: String? = nil, ip: String = "127.0.0.1") -> String {
        let rolloutField = rollout.map { ",\"rolloutId\":\"\($0)\"" } ?? ""
        return "{\"hostname\":\"\(host)\",\"ip\":\"\(ip)\",\"version\":\"\(version)\",\"labels\":{},\"state\":\"\(state)\",\"held\":[]\(rolloutField)}"
    }

    @Test func forgedBeatsWithAndWithoutTheEnrolmentTokenChangeNothing() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let hbs = try await HBSProcess.start(data: data.string)
        defer { hbs.kill() }
        for host in ["a", "b"] { #expect(try await hbs.beat(Self.beat(host)).status == 200) }
        let (created, rollout) = try await hbs.admin("POST", "/v1/rollouts", json: """
            {"release":{"name":"fledge-agent","version":"2.0.0"},"sources":[{"url":"http://cdn.test","capacityMbps":10000}],"maxConcurrent":1,"failureBudget":0}
            """)
        #expect(created == 201)
        let id = try #require((rollout as? [String: Any])?["id"] as? String)
        var admitted: String?
        for host in ["a", "b"] where admitted == nil {
            if (try await hbs.beat(Self.beat(host)).body as? [String: Any])?["order"] is [String: Any] { admitted = host }
        }
        let victim = try #require(admitted), other = victim == "a" ? "b" : "a"
        #expect(try await hbs.beat(Self.beat(victim, state: "downloading", rollout: id)).status == 200)
        let otherSecret = try await hbs.secret(of: other)

        let failed = Self.beat(victim, state: "failed", rollout: id)
        let done = Self.beat(victim, version: "2.0.0", rollout: id)
        let forgeries: [(String, [String: String], Int)] = [
            ("no credential", [:], 401),
            ("the host named, no secret", ["Fledge-Host": victim], 401),
            ("a wrong secret", ["Fledge-Host": victim, "Authorization": "Bearer \(String(repeating: "0", count: 64))"], 401),
            ("another host's secret under the victim's name", ["Fledge-Host": victim, "Authorization": "Bearer \(otherSecret)"], 401),
            ("the fleet token as a secret", ["Fledge-Host": victim, "Authorization": "Bearer \(hbs.fleetToken!)"], 401),
            ("another host's own credential", ["Fledge-Host": other, "Authorization": "Bearer \(otherSecret)"], 403),
        ]
        for body in [failed, done] {
            for (name, headers, status) in forgeries {
                let (got, answer) = try await hbs.rawBeat(body, headers: headers)
                #expect(got == status, "\(name): \(got) \(String(describing: answer))")
                #expect((answer as? [String: Any])?["error"] is String, "\(name): says why")
            }
        }
        // With the enrolment token, a forger still cannot take a bound name; without it, no name.
        #expect(try await hbs.enrol(victim).status == 409, "a bound name needs an admin")
        #expect(try await hbs.enrol("newcomer", token: "not-the-fleet-token-at-all").status == 401)

        // Nothing changed: the rollout runs, the victim still downloads, nobody failed or finished.
        let summary = try #require(try await hbs.admin("GET", "/v1/rollouts/\(id)").body as? [String: Any])
        let counts = summary["counts"] as? [String: Int] ?? [:]
        #expect(summary["phase"] as? String == "running", "\(summary)")
        #expect(counts["failed", default: 0] == 0 && counts["done", default: 0] == 0, "\(counts)")
        let metrics = String(decoding: try await LoopbackHTTP.request(port: hbs.adminPort, target: "/metrics").body, as: UTF8.self)
        let rejected = metrics.split(separator: "\n").first { $0.hasPrefix("hbs_rejected_beats_total ") }.flatMap { Int($0.split(separator: " ")[1]) }
        #expect((rejected ?? 0) >= 6, "wrong secrets and foreign beats are counted")

        // The real host goes on past them.
        #expect(try await hbs.beat(Self.beat(victim, version: "2.0.0", state: "confirming", rollout: id)).status == 200)
        #expect(try await hbs.beat(Self.beat(victim, version: "2.0.0")).status == 200)
        let after = try #require(try await hbs.admin("GET", "/v1/rollouts/\(id)").body as? [String: Any])
        #expect((after["counts"] as? [String: Int])?["done"] == 1, "\(after)")
    }

    /// A name is bound anew only after an admin forgets it: the old secret is then worthless.
    @Test func onlyAnAdminUnbindsAName() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        // Only 127.0.0.1 itself is trusted; 127.0.0.2 stands in for a remote peer.
        let hbs = try await HBSProcess.start(data: data.string, extra: ["--admin-allow", "127.0.0.1/32"])
        defer { hbs.kill() }
        #expect(try await hbs.beat(Self.beat("a")).status == 200)
        let secret = try await hbs.secret(of: "a")
        #expect(try await hbs.enrol("a").status == 409)
        #expect(try await hbs.admin("DELETE", "/v1/agents/a", from: "127.0.0.2").status == 403, "not from a remote peer without the admin token")
        #expect(try await hbs.admin("DELETE", "/v1/agents/a").status == 204)
        #expect(try await hbs.admin("DELETE", "/v1/agents/a").status == 404)
        #expect(try await hbs.agent("a") == nil)
        let stale = try await hbs.rawBeat(Self.beat("a"), headers: ["Fledge-Host": "a", "Authorization": "Bearer \(secret)"])
        #expect(stale.status == 401, "the forgotten secret opens nothing")
        let (enrolled, reply) = try await hbs.enrol("a")
        #expect(enrolled == 201)
        let fresh = try #require((reply as? [String: Any])?["secret"] as? String)
        #expect(fresh != secret && fresh.count == 64)
        #expect(try await hbs.rawBeat(Self.beat("a"), headers: ["Fledge-Host": "a", "Authorization": "Bearer \(fresh)"]).status == 200)
        #expect(try await hbs.enrol("bad/name").status == 400)
        #expect(hbs.child.stderr.contains("host a forgotten at the request of 127.0.0.1"), "the admin's change is logged with who made it")
    }

    /// A beat's advertised address is not believed: HBS lists the host where its connection came
    /// from (unless told to trust advertised addresses).
    @Test func aHostIsListedWhereItsConnectionCameFrom() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let hbs = try await HBSProcess.start(data: data.string)
        defer { hbs.kill() }
        #expect(try await hbs.beat(Self.beat("a", ip: "10.66.66.66")).status == 200)
        #expect(try await hbs.agent("a")?["ip"] as? String == "127.0.0.1")

        let trusting = try await HBSProcess.start(data: data.string + "/trusting", extra: ["--trust-advertised-addresses"])
        defer { trusting.kill() }
        #expect(try await trusting.beat(Self.beat("a", ip: "10.66.66.66")).status == 200)
        #expect(try await trusting.agent("a")?["ip"] as? String == "10.66.66.66")
    }

    /// HBS makes its own fleet token when given none: saved 0600 in its data directory, kept
    /// across restarts; and anonymous beats are allowed only when asked for.
    @Test func aTokenIsMadeWhenNoneIsGiven() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        await #expect(throws: (any Error).self, "a token shorter than 16 characters is refused at start") {
            try await HBSProcess.start(data: data.string + "/short", extra: ["--fleet-token-file", "/dev/null"])
        }
        let anonymous = try await HBSProcess.start(data: data.string + "/anonymous", extra: ["--anonymous-beats"])
        defer { anonymous.kill() }
        #expect(try await anonymous.rawBeat(Self.beat("a")).status == 200)
        #expect(anonymous.child.stderr.contains("--anonymous-beats"), "logged loudly")
        let path = data.string + "/anonymous/fleet-token"
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 64)
        #expect(try await anonymous.enrol("b", token: token).status == 201)
    }

    /// A host outside the rollout, authenticated as itself, says it holds the release whole and
    /// serves peers: HBS never ordered it the release nor saw it run it, so nobody is sent to it.
    /// A host seen running the release is.
    @Test func aClaimAloneListsNoPeer() async throws {
        let data = try TemporaryDirectory()
        defer { data.remove() }
        let hbs = try await HBSProcess.start(data: data.string)
        defer { hbs.kill() }
        func beat(_ host: String, version: String, held: Bool, port: Int) -> String {
            let holding = held ? #"[{"name":"fledge-agent","version":"2.0.0","complete":true}]"# : "[]"
            return #"{"hostname":"\#(host)","ip":"127.0.0.1","version":"\#(version)","labels":{"idc":"a"},"state":"idle","held":\#(holding),"peerPort":\#(port)}"#
        }
        #expect(try await hbs.beat(beat("liar", version: "1.0.0", held: true, port: 7001)).status == 200)
        #expect(try await hbs.beat(beat("runner", version: "2.0.0", held: true, port: 7002)).status == 200)
        #expect(try await hbs.beat(beat("target", version: "1.0.0", held: false, port: 7003)).status == 200)
        let (created, _) = try await hbs.admin("POST", "/v1/rollouts", json: """
            {"release":{"name":"fledge-agent","version":"2.0.0"},"sources":[{"url":"http://cdn.test","capacityMbps":1}],
             "selector":{"hosts":["target"]},"peers":true}
            """)
        #expect(created == 201)
        let order = try #require((try await hbs.beat(beat("target", version: "1.0.0", held: false, port: 7003)).body as? [String: Any])?["order"] as? [String: Any])
        let listed = (order["sources"] as? [String] ?? []) + (order["fallbackSources"] as? [String] ?? [])
        #expect(!listed.contains("http://127.0.0.1:7001"), "the liar is nobody's source: \(listed)")
        #expect(listed.contains("http://127.0.0.1:7002"), "a host seen running 2.0.0 serves it: \(listed)")
    }
}
