import Fetch
import Foundation
import Rollouts
import Wire

/// `fledgectl rollout watch`: follows a rollout's event stream to its end. On a terminal it
/// keeps one live progress line (hosts done of total with a bar, hosts by state, bytes from
/// CDNs and from peers, rate, ETA) and prints batch boundaries, failures and phase changes above
/// it as they happen; elsewhere it prints those as plain lines and the progress every 5 s;
/// `--json` prints each event and the final summary as JSON. Its result is the exit status.
struct RolloutWatcher {
    let client: HBSClient
    let id: String
    let json: Bool

    /// 0 completed with every host done, 1 completed with failed hosts or aborted (or lost), 2 paused.
    static func exitStatus(_ summary: RolloutSummary) -> Int32? {
        switch summary.phase {
        case "completed": (summary.counts["failed"] ?? 0) > 0 ? 1 : 0
        case "aborted": 1
        case "paused": 2
        default: nil
        }
    }

    /// One line: where a rollout stands.
    static func describe(_ summary: RolloutSummary) -> String {
        let states = summary.counts.filter { $0.key != "done" && $0.value > 0 }.sorted { $0.key < $1.key }
            .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let phase = switch summary.phase {
        case "completed": Terminal.green(summary.phase)
        case "paused", "aborted": Terminal.yellow(summary.phase)
        default: summary.phase
        }
        return "rollout \(summary.id) \(summary.name) \(summary.version): \(phase)\(summary.pauseReason.map { " (\($0))" } ?? ""), "
            + "\(summary.counts["done"] ?? 0)/\(summary.hosts) done\(states.isEmpty ? "" : ", \(states)")"
    }

    func fetch() throws -> RolloutSummary { try client.decode(RolloutSummary.self, "GET", "/v1/rollouts/\(id)") }

    func run() -> Int32 {
        var summary: RolloutSummary
        do { summary = try fetch() } catch {
            FileHandle.standardError.write(Data("fledgectl: \(error)\n".utf8))
            return 1
        }
        if !json { print("watching " + Self.describe(summary)) }
        var progress = ProgressLine(live: Terminal.isTerminal && !json)
        var lastFetch = Date()
        var lastPlain = Date.distantPast
        var outcome: Int32?
        var lastID = 0
        let follow = { (now: Date) in
            if let fresh = try? fetch() { summary = fresh }
            lastFetch = now
            if json { return }
            if progress.live {
                progress.draw(summary, at: now)
            } else if now.timeIntervalSince(lastPlain) >= 5 {
                lastPlain = now
                progress.print(progress.text(summary, at: now, width: 80))
            }
        }
        // Followed to its end: a stream cut (an HBS restarting, a proxy) is joined again where
        // it stopped, for as long as the rollout is active.
        var lost = 0
        while outcome == nil {
            do {
                try EventStreamReader.follow(
                    client.base + "/v1/rollouts/\(id)/events", headers: client.headers + ["Last-Event-ID: \(lastID)"], caFile: client.caFile,
                    onIdle: {
                        let now = Date()
                        if now.timeIntervalSince(lastFetch) >= 1 { follow(now) }
                        return outcome == nil
                    },
                    onEvent: { message in
                        if let number = Int(message.id ?? "") { lastID = number }
                        guard let event = try? JSONDecoder().decode(RolloutEvent.self, from: Data(message.data.utf8)) else { return true }
                        if json {
                            if let object = try? JSONSerialization.jsonObject(with: Data(message.data.utf8)),
                               let line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                                progress.print(String(decoding: line, as: UTF8.self))
                            }
                        } else if let line = Self.line(for: event) {
                            progress.print(line)
                        }
                        // Decided by where the rollout is now: a replayed pause may have been resumed since.
                        if [.paused, .completed, .aborted].contains(event.kind) {
                            follow(Date())
                            outcome = Self.exitStatus(summary)
                        }
                        return outcome == nil
                    })
                lost = 0
            } catch {
                lost += 1
                if lost == 1 { FileHandle.standardError.write(Data("fledgectl: the event stream broke (\(error)); joining it again\n".utf8)) }
            }
            guard outcome == nil else { break }
            if let fresh = try? fetch() {
                summary = fresh
                if let status = Self.exitStatus(fresh) {
                    outcome = status
                    break
                }
            }
            if lost >= 30 {
                FileHandle.standardError.write(Data("fledgectl: lost the event stream of \(id) for 30 tries; the rollout goes on\n".utf8))
                break
            }
            Thread.sleep(forTimeInterval: 1)
        }
        // One last read: the summary as JSON for scripts, decoded for people.
        let last = try? client.call("GET", "/v1/rollouts/\(id)")
        if let last, let data = try? JSONSerialization.data(withJSONObject: last, options: [.sortedKeys, .withoutEscapingSlashes]) {
            if let fresh = try? JSONDecoder().decode(RolloutSummary.self, from: data) { summary = fresh }
            if json { progress.print(String(decoding: data, as: UTF8.self)) }  // one line, as the events
        }
        progress.finish()
        if !json {
            print(Self.describe(summary))
            for failed in summary.failed { print("  " + Terminal.red("failed") + " \(failed.host): \(failed.reason)") }
        }
        return outcome ?? Self.exitStatus(summary) ?? 1
    }

    /// What an event says on its own line; hosts admitted and done only move the progress.
    static func line(for event: RolloutEvent) -> String? {
        let time = DateFormatter.localizedString(from: Date(timeIntervalSince1970: Double(event.at)), dateStyle: .none, timeStyle: .medium)
        switch event.kind {
        case .admitted, .done: return nil
        case .failed: return "\(time)  " + Terminal.red(event.line)
        case .paused, .aborted: return "\(time)  " + Terminal.yellow(event.line)
        case .completed: return "\(time)  " + Terminal.green(event.line)
        case .created, .batchStarted, .resumed, .rolledBack: return "\(time)  " + Terminal.bold(event.line)
        }
    }
}

/// The live progress line, and the rate between two of its draws.
struct ProgressLine {
    let live: Bool
    private var drawn = false
    private var previous: (time: Date, bytes: Double)?
    private var rate: Double = 0

    init(live: Bool) { self.live = live }

    /// `10/16 [#####-----] up 5 wait 1 failed 0 | cdn 48.2 MB peers 241.6 MB | 25.4 MB/s eta 6s`, in `width`.
    mutating func text(_ summary: RolloutSummary, at now: Date, width: Int) -> String {
        let cdn = Double(summary.bytesBySourceKind["cdn"] ?? 0), peers = Double(summary.bytesBySourceKind["peer"] ?? 0)
        if let previous, now.timeIntervalSince(previous.time) > 0.2 {
            rate = max(0, (cdn + peers - previous.bytes) / now.timeIntervalSince(previous.time))
        }
        if previous == nil || now.timeIntervalSince(previous!.time) > 0.2 { previous = (now, cdn + peers) }
        let done = summary.counts["done"] ?? 0
        let upgrading = HostPhase.allCases.filter(\.isActive).reduce(0) { $0 + (summary.counts[$1.rawValue] ?? 0) }
        let batch = summary.currentBatch.map { " b\($0)" } ?? ""
        let eta = summary.etaSeconds.map { " eta \(Int($0.rounded()))s" } ?? ""
        let rest = " up \(upgrading) wait \(summary.counts["pending"] ?? 0) failed \(summary.counts["failed"] ?? 0)\(batch)"
            + " | cdn \(humanBytes(cdn)) peers \(humanBytes(peers)) | \(humanBytes(rate))/s\(eta)"
        let head = "\(done)/\(summary.hosts) "
        let barWidth = max(5, width - head.count - rest.count - 3)
        let filled = summary.hosts > 0 ? barWidth * done / summary.hosts : 0
        let line = head + "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled) + "]" + rest
        return String(line.prefix(width - 1))
    }

    mutating func draw(_ summary: RolloutSummary, at now: Date) {
        let line = text(summary, at: now, width: 80)
        Swift.print("\r\u{1B}[2K" + line, terminator: "")
        fflush(nil)
        drawn = true
    }

    /// A line above the progress line, flushed at once (a pipe is block-buffered otherwise).
    mutating func print(_ line: String) {
        if drawn { Swift.print("\r\u{1B}[2K", terminator: "") }
        Swift.print(line)
        fflush(nil)
        drawn = false
    }

    mutating func finish() {
        if drawn { Swift.print("\r\u{1B}[2K", terminator: "") }
        drawn = false
        fflush(nil)
    }
}
