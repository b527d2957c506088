import ArgumentParser
import Foundation
import Rollouts

/// `fledgectl`: the operator's command line for HBS: start and follow rollouts, pause, resume,
/// abort, roll back, list agents, and falcon's four calls. Exit status: 0 done, 1 failed or
/// aborted (or an error), 2 paused (`rollout watch`), 64 bad arguments.
@main
struct Fledgectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fledgectl",
        abstract: "Operate Fledge rollouts through HBS's admin API.",
        discussion: "HBS URL and admin token: --hbs and --token-file, or FLEDGE_HBS and FLEDGE_TOKEN_FILE.",
        subcommands: [RolloutCommand.self, RolloutsCommand.self, AgentsCommand.self, FalconCommand.self])
}

// MARK: rollout

struct RolloutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout", abstract: "Start, follow and steer one rollout.",
        subcommands: [Start.self, Status.self, Watch.self, Act.Pause.self, Act.Resume.self, Act.Abort.self, Act.Rollback.self])

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a rollout (POST /v1/rollouts).")

        @OptionGroup var hbs: HBSOptions
        @Option(help: "Release name.") var name = "fledge-agent"
        @Option(help: "Version to roll out.") var version: String
        @Option(help: "Signed manifest URL (default: {source}/{name}/{version}/manifest.json).") var manifestUrl: String?
        @Option(name: .customLong("source"), help: "A CDN or origin: URL or URL=Mbps (repeat).") var sources: [String] = []
        @Option(name: .customLong("label"), help: "Only hosts with this label, k=v (repeat).") var labels: [String] = []
        @Option(name: .customLong("host"), help: "Only these hosts (repeat).") var hosts: [String] = []
        @Option(help: "Hosts in the canary batch.") var canary: Int?
        @Option(help: "Hosts per batch after the canary.") var batchSize: Int?
        @Option(help: "Batch sizes as percentages, e.g. 10,30,60.") var batchPercentages: String?
        @Option(help: "Hosts upgrading at once.") var maxConcurrent: Int?
        @Option(help: "Failed hosts tolerated before the rollout pauses.") var failureBudget: Int?
        @Flag(inversion: .prefixedNo, help: "Whether peers may serve the release.") var peers = true
        @Option(help: "Seconds a host has to confirm before it counts as failed.") var deadlineSeconds: Int?
        @Flag(help: "Print the answer as JSON.") var json = false
        @Flag(help: "Follow the rollout once started (as `rollout watch`).") var watch = false

        func body() throws -> [String: Any] {
            var release: [String: Any] = ["name": name, "version": version]
            if let manifestUrl { release["manifestUrl"] = manifestUrl }
            var body: [String: Any] = ["release": release, "peers": peers]
            body["sources"] = try sources.map { text -> [String: Any] in
                let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
                guard let url = parts.first, url.hasPrefix("http") else { throw ValidationError("--source \(text): give URL or URL=Mbps") }
                guard parts.count == 1 || Int(parts[1]) != nil else { throw ValidationError("--source \(text): Mbps must be a whole number") }
                return ["url": url, "capacityMbps": parts.count == 2 ? Int(parts[1])! : 1000]
            }
            if !labels.isEmpty {
                body["selector"] = ["labels": Dictionary(try labels.map(parseLabel), uniquingKeysWith: { $1 })]
            } else if !hosts.isEmpty {
                body["selector"] = ["hosts": hosts]
            }
            if let canary { body["canary"] = canary }
            if let batchSize { body["batchSize"] = batchSize }
            if let batchPercentages {
                body["batchPercentages"] = try batchPercentages.split(separator: ",").map { part -> Double in
                    guard let value = Double(part) else { throw ValidationError("--batch-percentages: '\(part)' is not a number") }
                    return value
                }
            }
            if let maxConcurrent { body["maxConcurrent"] = maxConcurrent }
            if let failureBudget { body["failureBudget"] = failureBudget }
            if let deadlineSeconds { body["deadlineSeconds"] = deadlineSeconds }
            return body
        }

        func run() throws {
            let client = try hbs.client
            let answer = try client.call("POST", "/v1/rollouts", json: try body())
            let summary = try JSONDecoder().decode(RolloutSummary.self, from: JSONSerialization.data(withJSONObject: answer))
            if json { Terminal.printJSON(answer) } else { print("rollout \(summary.id) started: \(summary.name) \(summary.version) to \(summary.hosts) hosts") }
            if watch { throw ExitCode(RolloutWatcher(client: client, id: summary.id, json: json).run()) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Where a rollout stands.")

        @OptionGroup var hbs: HBSOptions
        @Argument(help: "Rollout id (default: the latest).") var id: String?
        @Flag(help: "Print the answer as JSON.") var json = false

        func run() throws {
            let client = try hbs.client
            let id = try self.id ?? RolloutsCommand.latest(client)
            let answer = try client.call("GET", "/v1/rollouts/\(id)")
            if json { return Terminal.printJSON(answer) }
            let summary = try JSONDecoder().decode(RolloutSummary.self, from: JSONSerialization.data(withJSONObject: answer))
            print(RolloutWatcher.describe(summary))
            for failed in summary.failed { print("  " + Terminal.red("failed") + " \(failed.host): \(failed.reason)") }
        }
    }

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a rollout live until it completes, pauses or is aborted.",
            discussion: "Exit status: 0 completed, 1 completed with failed hosts or aborted, 2 paused.")

        @OptionGroup var hbs: HBSOptions
        @Argument(help: "Rollout id (default: the latest).") var id: String?
        @Flag(help: "One JSON object per event, and the final summary.") var json = false

        func run() throws {
            let client = try hbs.client
            let id = try self.id ?? RolloutsCommand.latest(client)
            throw ExitCode(RolloutWatcher(client: client, id: id, json: json).run())
        }
    }

    /// pause, resume, abort, rollback: one POST each (`RolloutAction`).
    enum Act {
        struct Pause: RolloutAction {
            static let configuration = CommandConfiguration(abstract: "Pause a running rollout (no new hosts start).")
            static let action = "pause"
            @OptionGroup var target: RolloutActionTarget
        }

        struct Resume: RolloutAction {
            static let configuration = CommandConfiguration(abstract: "Resume a paused rollout.")
            static let action = "resume"
            @OptionGroup var target: RolloutActionTarget
        }

        struct Abort: RolloutAction {
            static let configuration = CommandConfiguration(abstract: "Abort a rollout (hosts already upgraded stay).")
            static let action = "abort"
            @OptionGroup var target: RolloutActionTarget
        }

        struct Rollback: RolloutAction {
            static let configuration = CommandConfiguration(abstract: "Roll the hosts a rollout touched back to where they came from.")
            static let action = "rollback"
            @OptionGroup var target: RolloutActionTarget
        }
    }
}

/// A command that POSTs one action to a rollout and says where it left it.
protocol RolloutAction: ParsableCommand {
    static var action: String { get }
    var target: RolloutActionTarget { get }
}

/// What every rollout action takes: where HBS is, the rollout, and how to answer.
struct RolloutActionTarget: ParsableArguments {
    @OptionGroup var hbs: HBSOptions
    @Argument(help: "Rollout id.") var id: String
    @Flag(help: "Print the answer as JSON.") var json = false
}

extension RolloutAction {
    func run() throws {
        let answer = try target.hbs.client.call("POST", "/v1/rollouts/\(target.id)/\(Self.action)")
        if target.json { return Terminal.printJSON(answer) }
        let summary = try JSONDecoder().decode(RolloutSummary.self, from: JSONSerialization.data(withJSONObject: answer))
        print(Self.action == "rollback" ? "rollout \(summary.id) started: back to \(summary.version) on \(summary.hosts) hosts" : RolloutWatcher.describe(summary))
    }
}

/// `--label k=v` as a pair.
func parseLabel(_ label: String) throws -> (String, String) {
    let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2 else { throw ValidationError("--label \(label): give key=value") }
    return (parts[0], parts[1])
}

// MARK: rollouts, agents

struct RolloutsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollouts", abstract: "List rollouts, newest last.")

    @OptionGroup var hbs: HBSOptions
    @Flag(help: "Print the answer as JSON.") var json = false

    static func latest(_ client: HBSClient) throws -> String {
        let all = try client.decode([RolloutSummary].self, "GET", "/v1/rollouts")
        guard let last = all.last else { throw HBSError(description: "HBS holds no rollout yet") }
        return last.id
    }

    func run() throws {
        let client = try hbs.client
        if json { return Terminal.printJSON(try client.call("GET", "/v1/rollouts")) }
        let all = try client.decode([RolloutSummary].self, "GET", "/v1/rollouts")
        var table = Table(headers: ["ID", "PHASE", "RELEASE", "HOSTS", "DONE", "FAILED", "CREATED"])
        let dates = DateFormatter()
        dates.dateFormat = "yyyy-MM-dd HH:mm"
        for summary in all {
            table.rows.append([
                summary.id, summary.phase, "\(summary.name) \(summary.version)", "\(summary.hosts)", "\(summary.counts["done"] ?? 0)",
                "\(summary.counts["failed"] ?? 0)", dates.string(from: Date(timeIntervalSince1970: Double(summary.createdAt))),
            ])
        }
        print(table.render())
    }
}

struct AgentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agents", abstract: "List agents as HBS last saw them.")

    @OptionGroup var hbs: HBSOptions
    @Option(help: "Only agents in this state (idle, downloading, installing, restarting, confirming, failed).") var state: String?
    @Option(help: "Only agents running this version.") var version: String?
    @Option(name: .customLong("label"), help: "Only agents with this label, k=v (repeat).") var labels: [String] = []
    @Flag(help: "Print the answer as JSON.") var json = false

    func run() throws {
        let wanted = try labels.map(parseLabel)
        let agents = (try hbs.client.call("GET", "/v1/agents") as? [[String: Any]] ?? []).filter { agent in
            let agentLabels = agent["labels"] as? [String: String] ?? [:]
            return (state == nil || agent["state"] as? String == state) && (version == nil || agent["version"] as? String == version)
                && wanted.allSatisfy { agentLabels[$0.0] == $0.1 }
        }
        if json { return Terminal.printJSON(agents) }
        var table = Table(headers: ["HOST", "VERSION", "STATE", "STARTS", "LABELS / ERROR"])
        for agent in agents {
            let labels = (agent["labels"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            table.rows.append([
                agent["host"] as? String ?? "?", agent["version"] as? String ?? "?", agent["state"] as? String ?? "?",
                (agent["starts"] as? Int).map(String.init) ?? "-", (agent["error"] as? String).map { "\(labels) \($0)" } ?? labels,
            ])
        }
        print(table.render())
        print("\(agents.count) agent\(agents.count == 1 ? "" : "s")")
    }
}

// MARK: falcon

struct FalconCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "falcon", abstract: "falcon-plus's four upgrade calls, unchanged.",
        subcommands: [Upgrade.self, Status.self, Cancel.self, Versions.self])

    struct Upgrade: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "POST /agent/upgrade: upgrade every agent to a falcon release.")
        @OptionGroup var hbs: HBSOptions
        @Option(help: "Where bin_{version} and cfg_{version} are.") var wgeturl: String
        @Option(help: "Version.") var version: String
        @Option(help: "0 binary, 1 config, 2 both.") var type = 0
        @Option(help: "md5 of bin_{version}.") var binMd5: String?
        @Option(help: "md5 of cfg_{version}.") var cfgMd5: String?
        func run() throws {
            var body: [String: Any] = ["wgeturl": wgeturl, "version": version, "type": type]
            if let binMd5 { body["binfile_md5"] = binMd5 }
            if let cfgMd5 { body["cfgfile_md5"] = cfgMd5 }
            Terminal.printJSON(try hbs.client.call("POST", "/agent/upgrade", json: body))
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "GET /agent/upgrade/nowargs: the upgrade in force.")
        @OptionGroup var hbs: HBSOptions
        func run() throws { Terminal.printJSON(try hbs.client.call("GET", "/agent/upgrade/nowargs")) }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "DELETE /agent/upgrade: stop upgrading.")
        @OptionGroup var hbs: HBSOptions
        func run() throws { Terminal.printJSON(try hbs.client.call("DELETE", "/agent/upgrade")) }
    }

    struct Versions: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "GET /agentversions: each agent's version.")
        @OptionGroup var hbs: HBSOptions
        @Flag(help: "Print the answer as JSON.") var json = false
        func run() throws {
            let answer = try hbs.client.call("GET", "/agentversions")
            if json { return Terminal.printJSON(answer) }
            let versions = (answer as? [String: Any])?["data"] as? [String: String] ?? [:]
            var table = Table(headers: ["HOST", "VERSION"])
            table.rows = versions.sorted { $0.key < $1.key }.map { [$0.key, $0.value] }
            print(table.render())
            let counts = Dictionary(versions.values.map { ($0, 1) }, uniquingKeysWith: +).sorted { $0.key < $1.key }
            print(counts.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        }
    }
}
