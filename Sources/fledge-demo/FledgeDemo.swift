import ArgumentParser
import Foundation
import LocalFleet
import ProcessHarness
import Wire

/// `fledge-demo` (what `make demo` runs): a whole fleet upgrade on this machine. fledge-hbs,
/// one origin and 16 agents on 1.0.0 as real processes on 127.0.0.1; 1.1.0 published and
/// rolled out with a canary and batches, peers allowed; live progress, then a summary.
@main
struct FledgeDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fledge-demo",
        abstract: "Upgrade a local fleet of fledge-agents from 1.0.0 to 1.1.0: canary, batches, peers, progress.",
        discussion: """
            Runs fledge-hbs (embedded store), one fledge-seeder serve origin and --agents \
            fledge-agents under scripts/supervise, all on 127.0.0.1, from the release builds \
            beside this executable (or FLEDGE_BIN_DIR). Everything lives in a temporary \
            directory that is removed at the end; every process is stopped at the end, on \
            error, and on Ctrl-C. Exit status: 0 every host upgraded, 1 failed, 64 bad arguments.
            """)

    @Option(help: "Agents in the fleet.") var agents = 16
    @Option(name: .customLong("agent-mib"), help: "Each agent's download and peer upload cap, MiB/s.") var agentMiB = 10.0
    @Option(name: .customLong("origin-mib"), help: "The origin's upload cap, MiB/s.") var originMiB = 20.0
    @Option(help: "Hosts in the canary batch.") var canary = 1
    @Option(name: .customLong("batch-size"), help: "Hosts per batch after the canary.") var batchSize = 5
    @Flag(inversion: .prefixedNo, help: "Peers relay verified pieces as they arrive (a swarm), not only whole releases.")
    var pieceRelay = true
    @Option(help: "Directory to create the temporary directory in (default: /tmp).") var workdir: String?
    @Flag(help: "Keep the fleet and the dashboard up after the rollout, until Ctrl-C: click around, pause, roll back.")
    var stay = false

    func validate() throws {
        guard agents > 0 else { throw ValidationError("--agents must be positive") }
        guard agentMiB > 0, originMiB > 0 else { throw ValidationError("caps must be positive") }
        guard canary >= 0, batchSize > 0 else { throw ValidationError("--canary must not be negative, --batch-size must be positive") }
    }

    func run() async throws {
        Cleanup.shared.installSignalHandlers(program: "fledge-demo")
        var plan = FleetPlan()
        plan.agents = agents
        plan.originBytesPerSecond = Int64(originMiB * 1_048_576)
        plan.agentDownloadBytesPerSecond = Int64(agentMiB * 1_048_576)
        plan.agentUploadBytesPerSecond = Int64(agentMiB * 1_048_576)
        plan.fastBeatSeconds = 0.5
        plan.pieceSize = 512 << 10
        plan.pieceRelay = pieceRelay
        var rollout = RolloutPlan()
        rollout.canary = canary
        rollout.batchSize = batchSize
        rollout.peers = true
        rollout.maxConcurrent = agents
        do {
            try await Cleanup.shared.withTemporaryDirectory(in: workdir, label: "fledge-demo") { directory in
                try await Self.demo(plan: plan, rollout: rollout, in: directory.string, stay: stay)
            }
        } catch let error as ExitCode {
            throw error
        } catch where !Cleanup.shared.isStopping {
            FileHandle.standardError.write(Data("fledge-demo: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    static func demo(plan: FleetPlan, rollout: RolloutPlan, in directory: String, stay: Bool) async throws {
        let started = ContinuousClock.now
        let fleet = try await LocalFleet.start(plan, in: directory) { say($0) }
        do {
            let admin = "http://127.0.0.1:\(fleet.hbs.adminPort)"
            say("dashboard: \(admin)/ui/   follow it in a terminal: FLEDGE_HBS=\(admin) \(Binaries.path("fledgectl")) rollout watch")
            let release = try await fleet.publishTarget()
            say("published fledge-agent \(plan.toVersion): \(megabytes(release.totalSize)) MB in \(release.pieces) pieces of \(release.pieceSize >> 10) KiB (signed, fledge-seeder publish)")
            say("rollout: canary \(rollout.canary), then batches of \(rollout.batchSize ?? plan.agents), peers allowed (\(plan.pieceRelay ? "relaying pieces" : "whole releases")); caps: origin \(mib(plan.originBytesPerSecond)) MiB/s, each agent \(mib(plan.agentDownloadBytesPerSecond)) MiB/s down and up")
            let (id, postedAt) = try await fleet.startRollout(rollout)
            let line = ProgressLine(hosts: plan.agents)
            let timeline = try await fleet.watch(id, postedAt: postedAt, every: .milliseconds(500)) { line.show($0) }
            line.finish()
            let total = ContinuousClock.now - started
            try await summarize(fleet, id: id, release: release, timeline: timeline,
                                total: total.seconds)
            if stay {
                say("the fleet stays up: dashboard \(admin)/ui/, FLEDGE_HBS=\(admin) fledgectl rollouts; Ctrl-C stops everything")
                while !Cleanup.shared.isStopping { try await Task.sleep(for: .milliseconds(500)) }
            }
            await fleet.stop()
        } catch {
            await fleet.stop()
            throw error
        }
    }

    static func summarize(
        _ fleet: LocalFleet, id: String, release: SeederCLI.Published, timeline: RolloutTimeline, total: Double
    ) async throws {
        guard let last = timeline.last else { return }
        let versions = try await fleet.reportedVersions()
        let target = fleet.plan.toVersion
        let upgraded = fleet.hosts.filter { versions[$0.name] == target && $0.installedVersion == target }.count
        var lines = [
            "",
            "rollout \(id) \(last.progress.phase) in \(String(format: "%.1f", last.seconds)) s (the whole demo: \(String(format: "%.1f", total)) s): \(upgraded)/\(fleet.hosts.count) hosts on \(target)",
            "release: \(megabytes(release.totalSize)) MB; the origin served \(megabytes(last.originBytes)) MB = \(String(format: "%.2f", Double(last.originBytes) / Double(release.totalSize))) x the release, peers served \(megabytes(last.peerBytes)) MB (servers' own counts)",
            "agents report fetching \(megabytes(last.progress.bytesBySourceKind["cdn"] ?? 0)) MB from the CDN and \(megabytes(last.progress.bytesBySourceKind["peer"] ?? 0)) MB from peers (HBS, bytes by source kind)",
            "",
            "host     labels   version (HBS)  DATA/current",
        ]
        for host in fleet.hosts {
            let labels = "\(host.labels["idc"] ?? "-")/\(host.labels["rack"] ?? "-")"
            let reported = (versions[host.name] ?? nil) ?? "unknown"
            lines.append(host.name.padding(toLength: 9, withPad: " ", startingAt: 0) + labels.padding(toLength: 9, withPad: " ", startingAt: 0)
                + reported.padding(toLength: 15, withPad: " ", startingAt: 0) + (host.installedVersion ?? "none"))
        }
        print(lines.joined(separator: "\n"))
        guard upgraded == fleet.hosts.count else {
            throw DemoFailure("\(fleet.hosts.count - upgraded) host(s) did not end on \(target): see the table above")
        }
    }

    static func say(_ message: String) { FileHandle.standardError.write(Data("fledge-demo: \(message)\n".utf8)) }
    static func megabytes(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / 1e6) }
    static func mib(_ rate: Int64?) -> String { rate.map { String(format: "%.0f", Double($0) / 1_048_576) } ?? "unlimited" }
}

/// The demo ended without every host on the new version.
struct DemoFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
