import Foundation
import ProcessHarness

/// A whole Fledge fleet on this machine, as real processes: one `fledge-hbs` on its embedded
/// store, `fledge-seeder serve` origins under their upload caps, and agents under
/// `scripts/supervise`, each with a data directory, peer port and config of its own, all on
/// the plan's start version. On loopback (the default) everything is on 127.0.0.1 and Fledge's
/// rate limiters hold the caps; with `FleetNetwork.namespaces` each origin and agent runs in a
/// network namespace of its own on a bridge, HBS listens for agents on the bridge, and `tc`
/// holds the caps (`KernelLinks`). It publishes the target version, starts a v1 rollout, reads
/// its progress, and stops every process it started and removes the network it built
/// (`stop()`; on SIGINT/SIGTERM the `Cleanup` policy does both, agents included, since every
/// process is listed in `RunningChildren` and the network's teardown in `Cleanup`).
public final class LocalFleet: Sendable {
    public let plan: FleetPlan
    /// Where everything lives: hbs/, origin/, hosts/, release/ (and links.sh, namespaced).
    public let directory: String
    public let hbs: HBSProcess
    public let origins: [FleetOrigin]
    public let hosts: [FleetHost]
    /// The bridge, namespaces and shaped links of a namespaced fleet; nil on loopback.
    public let links: KernelLinks?
    let release: FleetRelease
    var originRoot: String { directory + "/origin" }

    private init(
        plan: FleetPlan, directory: String, hbs: HBSProcess, origins: [FleetOrigin], hosts: [FleetHost], links: KernelLinks?,
        release: FleetRelease
    ) {
        self.plan = plan
        self.directory = directory
        self.hbs = hbs
        self.origins = origins
        self.hosts = hosts
        self.links = links
        self.release = release
    }

    /// The products a fleet runs; `Binaries` finds them (beside the running executable, or in
    /// FLEDGE_BIN_DIR).
    public static let products = ["fledge-hbs", "fledge-seeder", "fledge-agent"]

    /// Starts the fleet of `plan` in `directory` (which must exist, and be empty) and returns
    /// once every agent has beaten to HBS on the start version. Whatever started is stopped
    /// again if a later step fails. `log` hears each step.
    public static func start(_ plan: FleetPlan, in directory: String, log: @Sendable (String) -> Void = { _ in }) async throws -> LocalFleet {
        try plan.validate()
        for name in products where !FileManager.default.isExecutableFile(atPath: Binaries.path(name)) {
            throw LocalFleetError.missingProduct(name: name, path: Binaries.path(name))
        }
        for sub in ["hbs", "origin", "hosts", "release"] {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(sub)", withIntermediateDirectories: true)
        }
        log("keys and fledge-agent \(plan.fromVersion) (fledge-seeder keygen, stamp)")
        let release = try await FleetRelease.prepare(plan, in: directory + "/release")
        var links: KernelLinks?
        if plan.network == .namespaces {
            links = try await KernelLinks.create(for: plan, in: directory, log: log)
            log("network: bridge \(links!.bridge) \(KernelLinks.bridgeAddress)/16, \(plan.origins) origin and \(plan.agents) agent namespaces, links shaped by tc tbf (\(Self.describeCaps(plan)))")
        }
        var hbs: HBSProcess?, origins: [FleetOrigin] = [], hosts: [FleetHost] = []
        do {
            let config = directory + "/hbs.json"
            try HBSSettings.write(plan, to: config)
            hbs = try await HBSProcess.start(
                data: directory + "/hbs", extra: ["--config", config], agentHost: links == nil ? Loopback.host : KernelLinks.bridgeAddress)
            log("fledge-hbs: agents on \(hbs!.agentHost):\(hbs!.agentPort), admin on \(Loopback.host):\(hbs!.adminPort)")
            for index in 0..<plan.origins {
                origins.append(try await FleetOrigin.start(
                    root: directory + "/origin", bytesPerSecond: plan.originBytesPerSecond, node: links?.origins[index]))
            }
            log("\(plan.origins) origin(s): \(origins.map(\.url).joined(separator: " "))")
            for index in 0..<plan.agents {
                hosts.append(try await FleetHost.start(
                    index: index, plan: plan, directory: directory + "/hosts", hbs: hbs!, node: links?.agents[index],
                    publicKey: release.publicKey, stamped: release.startBinary))
            }
            log("\(plan.agents) agents on \(plan.fromVersion) under scripts/supervise\(links == nil ? "" : ", each in its namespace"); waiting for their first beats")
            try await waitForAgents(hosts, hbs: hbs!, version: plan.fromVersion)
            return LocalFleet(plan: plan, directory: directory, hbs: hbs!, origins: origins, hosts: hosts, links: links, release: release)
        } catch {
            await Self.stop(hosts: hosts, origins: origins, hbs: hbs, links: links)
            throw error
        }
    }

    /// The caps of `plan` in Mbit/s, for the log.
    private static func describeCaps(_ plan: FleetPlan) -> String {
        func mbps(_ cap: Int64?) -> String { cap.map { String(format: "%.1f Mbit/s", FleetPlan.megabits($0)) } ?? "unshaped" }
        return "agents down \(mbps(plan.agentDownloadBytesPerSecond)), up \(mbps(plan.agentUploadBytesPerSecond)); origins up \(mbps(plan.originBytesPerSecond))"
    }

    /// Until HBS lists every host on `version`; at most 20 s plus 0.5 s a host.
    private static func waitForAgents(_ hosts: [FleetHost], hbs: HBSProcess, version: String) async throws {
        let seconds = 20 + 0.5 * Double(hosts.count)
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var missing = hosts.map(\.name)
        while ContinuousClock.now < deadline {
            let seen = Dictionary(try await hbs.agents().map { ($0["host"] as? String ?? "", $0["version"] as? String ?? "") }) { a, _ in a }
            missing = hosts.map(\.name).filter { seen[$0] != version }
            if missing.isEmpty { return }
            if let dead = hosts.first(where: { !$0.isRunning }) {
                throw LocalFleetError.agentsDidNotRegister(hosts: [dead.name], seconds: 0, log: String(dead.log.suffix(1500)))
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let first = hosts.first { $0.name == missing.first }
        throw LocalFleetError.agentsDidNotRegister(hosts: missing, seconds: seconds, log: String(first?.log.suffix(1500) ?? ""))
    }

    /// Publishes the plan's target version into the origins' tree.
    public func publishTarget() async throws -> SeederCLI.Published {
        try await release.publishTarget(plan, into: originRoot)
    }

    /// POSTs a v1 rollout of the target version from every origin; its id, and the moment just
    /// before the POST (the rollout's time zero).
    public func startRollout(_ rollout: RolloutPlan) async throws -> (id: String, postedAt: ContinuousClock.Instant) {
        // A little over the cap, so capacity / downlink does not round down a slot.
        let capacity = plan.originBytesPerSecond.map { FleetPlan.megabits($0) * 1.001 } ?? 10_000
        let body = rollout.body(name: "fledge-agent", version: plan.toVersion, sources: origins.map(\.url), capacityMbps: capacity)
        let postedAt = ContinuousClock.now
        let (status, answer) = try await hbs.admin("POST", "/v1/rollouts", json: body)
        guard status == 201, let id = (answer as? [String: Any])?["id"] as? String else {
            throw LocalFleetError.rolloutRefused(status: status, body: "\(answer ?? "no body")")
        }
        return (id, postedAt)
    }

    /// One reading of rollout `id`: HBS's summary and the servers' byte counts.
    public func sample(_ id: String, postedAt: ContinuousClock.Instant) async throws -> FleetSample {
        guard hbs.child.isRunning else {
            throw LocalFleetError.hbsUnreachable("fledge-hbs exited (\(hbs.child.exit!)): \(hbs.child.stderr.suffix(800))")
        }
        let answer: (status: Int, body: Any?)
        do { answer = try await hbs.admin("GET", "/v1/rollouts/\(id)") } catch {
            throw LocalFleetError.hbsUnreachable("\(error)")
        }
        let seconds = (ContinuousClock.now - postedAt).seconds
        guard answer.status == 200, let progress = RolloutProgress(json: answer.body, seconds: seconds) else {
            throw LocalFleetError.hbsUnreachable("GET /v1/rollouts/\(id) answered \(answer.status): \(String(describing: answer.body))")
        }
        // Reading the logs is file I/O: on a thread of its own, not the cooperative pool.
        let (origins, hosts) = (self.origins, self.hosts)
        let (originBytes, peerBytes) = try await Blocking.run {
            (origins.map(\.servedBytes).reduce(0, +), hosts.map(\.servedBytes).reduce(0, +))
        }
        return FleetSample(progress: progress, originBytes: originBytes, peerBytes: peerBytes)
    }

    /// Reads rollout `id` every `interval` until it completes, handing each reading to
    /// `onSample` (which sees the readings so far even when this throws); the readings. Throws
    /// if it pauses or is aborted, or has not completed within `timeout` of its POST.
    public func watch(
        _ id: String, postedAt: ContinuousClock.Instant, every interval: Duration = .milliseconds(250),
        timeout: Duration = .seconds(600), onSample: (FleetSample) -> Void = { _ in }
    ) async throws -> RolloutTimeline {
        var timeline = RolloutTimeline()
        while true {
            let sample = try await sample(id, postedAt: postedAt)
            timeline.add(sample)
            onSample(sample)
            let progress = sample.progress
            switch progress.phase {
            case "completed": return timeline
            case "paused", "aborted":
                throw LocalFleetError.rolloutStopped(phase: progress.phase, reason: progress.pauseReason ?? "", failed: progress.failed)
            default: break
            }
            if sample.seconds > timeout.seconds {
                throw LocalFleetError.rolloutTimedOut(seconds: timeout.seconds, counts: progress.counts)
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Each host's version as HBS last heard it (`GET /v1/agents`); nil for a host it does not list.
    public func reportedVersions() async throws -> [String: String?] {
        let seen = Dictionary(try await hbs.agents().map { ($0["host"] as? String ?? "", $0["version"] as? String ?? "") }) { a, _ in a }
        return Dictionary(uniqueKeysWithValues: hosts.map { ($0.name, seen[$0.name]) })
    }

    /// Stops every process of the fleet: agents (through their supervisors), origins, HBS; then
    /// removes its network, if namespaced. With `FLEDGE_FLEET_LOGS=DIR` set, each host's log is
    /// kept as DIR/HOST.log.
    public func stop() async {
        await Self.stop(hosts: hosts, origins: origins, hbs: hbs, links: links)
        if let directory = ProcessInfo.processInfo.environment["FLEDGE_FLEET_LOGS"] {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for host in hosts { try? host.log.write(toFile: "\(directory)/\(host.name).log", atomically: true, encoding: .utf8) }
        }
    }

    private static func stop(hosts: [FleetHost], origins: [FleetOrigin], hbs: HBSProcess?, links: KernelLinks?) async {
        await withTaskGroup(of: Void.self) { group in
            for host in hosts { group.addTask { await host.stop() } }
        }
        for origin in origins { await origin.stop() }
        if let hbs { await hbs.child.stop(grace: .seconds(3)) }
        if let links { await Blocking.teardown(links) }
    }
}

