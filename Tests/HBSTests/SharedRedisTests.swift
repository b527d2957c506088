import Foundation
import FledgeTesting
import Wire
import Testing

/// Two real `fledge-hbs` processes sharing one real redis-server, and a fleet of fake agents
/// beating to either at random: the concurrency limit holds across both, a Redis outage
/// mid-rollout is ridden out (beats answered, nobody admitted), the rollout finishes, and both
/// instances see it finished the same way.
@Suite struct SharedRedisTests {
    /// A fake agent: what it reports, moved along by the orders it gets.
    struct FakeAgent {
        var host: String
        var version = "1.0.0"
        var state = "idle"
        var rollout: String?

        var upgrading: Bool { rollout != nil }

        func beat() -> String { HBSProcessTests.beat(host, version: version, state: state, rollout: rollout) }

        /// One step of an upgrade per beat: downloading, restarting, confirming on the new
        /// version, then committed (idle).
        /// `order` is the rollout id of the order the last beat got, if any.
        mutating func advance(order: String?) {
            switch (rollout, state) {
            case (nil, _):
                if let order { rollout = order; state = "downloading" }
            case (_, "downloading"): state = "restarting"
            case (_, "restarting"): version = "2.0.0"; state = "confirming"
            default: state = "idle"; rollout = nil
            }
        }
    }

    @Test func limitHoldsAcrossInstancesAndThroughAnOutage() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.string + "/redis", withIntermediateDirectories: true)
        let redis = try await RedisProcess.start(directory: directory.string + "/redis")
        defer { redis.kill() }
        let one = try await HBSProcess.start(data: directory.string + "/one", extra: ["--redis", redis.url, "--fast-beat", "0.2"])
        let instances = [
            one,
            try await HBSProcess.start(
                data: directory.string + "/two", extra: ["--redis", redis.url, "--fast-beat", "0.2", "--fleet-token-file", one.fleetTokenFile!],
                secrets: one.secrets),
        ]
        defer { instances.forEach { $0.kill() } }

        let limit = 4
        var agents = (0..<24).map { FakeAgent(host: String(format: "agent%02d", $0)) }
        for (index, agent) in agents.enumerated() { #expect(try await instances[index % 2].beat(agent.beat()).status == 200) }
        let (created, _) = try await instances[0].admin("POST", "/v1/rollouts", json: """
            {"release":{"name":"fledge-agent","version":"2.0.0"},"sources":[{"url":"http://cdn.test","capacityMbps":100000}],
             "maxConcurrent":\(limit),"failureBudget":50,"leaseSeconds":3}
            """)
        #expect(created == 201)

        var generator = SplitMix64(seed: 7)
        var maxSeen = 0
        var outageOrders = 0
        for round in 0..<300 {
            let outage = (8..<14).contains(round)
            if round == 8 { redis.kill() }
            if round == 14 { try await redis.restart() }
            let targets = agents.map { _ in Int.random(in: 0...1, using: &generator) }
            let replies = try await withThrowingTaskGroup(of: (Int, Int, String?).self) { group in
                for (index, agent) in agents.enumerated() {
                    let instance = instances[targets[index]]
                    let body = agent.beat()
                    group.addTask {
                        let (status, json) = try await instance.beat(body)
                        let order = (json as? [String: Any])?["order"] as? [String: Any]
                        return (index, status, order?["rolloutId"] as? String)
                    }
                }
                return try await group.reduce(into: [(Int, Int, String?)]()) { $0.append($1) }
            }
            for (index, status, order) in replies {
                #expect(status == 200, "beats are answered, Redis or not")
                if outage && order != nil && !agents[index].upgrading { outageOrders += 1 }
                agents[index].advance(order: order)
            }
            let upgrading = agents.filter(\.upgrading).count
            maxSeen = max(maxSeen, upgrading)
            #expect(upgrading <= limit, "round \(round): \(upgrading) hosts upgrading at once, limit \(limit)")
            if agents.allSatisfy({ $0.version == "2.0.0" && !$0.upgrading }) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(outageOrders == 0, "nobody is admitted while Redis is down")
        #expect(maxSeen == limit, "the limit was used, not just respected")
        #expect(agents.allSatisfy { $0.version == "2.0.0" }, "the rollout finished after the outage: \(agents.filter { $0.version != "2.0.0" }.map(\.host))")
        // Agents keep beating; the sweeps (once a second) see every host done and complete it.
        var phase: String?
        for round in 0..<100 where phase != "completed" {
            for (index, agent) in agents.enumerated() { _ = try await instances[(index + round) % 2].beat(agent.beat()) }
            let (_, list) = try await instances[1].admin("GET", "/v1/rollouts")
            phase = (list as? [[String: Any]])?.first?["phase"] as? String
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(phase == "completed")
        // Both instances agree on the finished rollout, the one that did not complete it
        // included: every host done (it used to keep its own table from before, for good).
        var views: [String] = []
        for _ in 0..<30 {
            views = []
            for instance in instances {
                let (_, list) = try await instance.admin("GET", "/v1/rollouts")
                let summary = (list as? [[String: Any]])?.first
                views.append("\(summary?["phase"] as? String ?? "?") \(summary?["counts"] as? [String: Int] ?? [:])")
            }
            if views.allSatisfy({ $0 == "completed [\"done\": \(agents.count)]" }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(views.allSatisfy { $0 == "completed [\"done\": \(agents.count)]" }, "instances disagree: \(views)")
    }

    /// A Redis that hangs (SIGSTOP: its sockets stay open, nothing is answered) costs beats one
    /// bounded timeout now and then, not one per call: every beat is answered, nobody is
    /// admitted meanwhile, and admissions resume once it answers again.
    @Test func aHungRedisDoesNotStallBeats() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.string + "/redis", withIntermediateDirectories: true)
        let redis = try await RedisProcess.start(directory: directory.string + "/redis")
        defer { redis.thaw(); redis.kill() }
        let hbs = try await HBSProcess.start(data: directory.string + "/hbs", extra: ["--redis", redis.url, "--fast-beat", "0.2"])
        defer { hbs.kill() }
        var agents = (0..<6).map { FakeAgent(host: "hung\($0)") }
        for agent in agents { #expect(try await hbs.beat(agent.beat()).status == 200) }
        let (created, _) = try await hbs.admin("POST", "/v1/rollouts", json: """
            {"release":{"name":"fledge-agent","version":"2.0.0"},"sources":[{"url":"http://cdn.test","capacityMbps":100000}],
             "maxConcurrent":1,"failureBudget":50,"leaseSeconds":60}
            """)
        #expect(created == 201)

        redis.freeze()
        var latencies: [Double] = []
        var orders = 0
        let until = ContinuousClock.now + .seconds(8)
        while ContinuousClock.now < until {
            for index in agents.indices {
                let started = ContinuousClock.now
                let (status, json) = try await hbs.beat(agents[index].beat())
                latencies.append((ContinuousClock.now - started).seconds * 1000)
                #expect(status == 200, "answered while Redis hangs")
                if ((json as? [String: Any])?["order"]) != nil { orders += 1 }
            }
        }
        redis.thaw()
        let sorted = latencies.sorted()
        let slow = sorted.filter { $0 > 400 }.count
        print("hung redis: \(sorted.count) beats in 8 s, median \(Int(sorted[sorted.count / 2])) ms, max \(Int(sorted.last ?? 0)) ms, \(slow) over 400 ms")
        #expect(orders == 0, "nobody admitted while the ledger cannot be asked")
        #expect(slow < sorted.count / 4, "timeouts are paid now and then, not on every beat: \(slow) of \(sorted.count) over 400 ms")

        // Redis answers again: within the longest back-off (4 s) plus a sweep, a host is admitted.
        var admitted = false
        let deadline = ContinuousClock.now + .seconds(15)
        while !admitted && ContinuousClock.now < deadline {
            for index in agents.indices where !admitted {
                let (_, json) = try await hbs.beat(agents[index].beat())
                if let order = ((json as? [String: Any])?["order"] as? [String: Any])?["rolloutId"] as? String {
                    agents[index].advance(order: order)
                    admitted = true
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(admitted, "admissions resume once Redis answers")
    }
}
