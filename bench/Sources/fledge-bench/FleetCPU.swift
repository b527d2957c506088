import Foundation
import LocalFleet
import ProcessHarness

/// CPU used while a fleet rolled out: by the fleet's own processes (HBS, origins, and each
/// supervisor with every agent and self-test it ran), by this bench (which reads the logs), and
/// by the whole machine (other work on it included), so a reader can tell whether the cores
/// were the bottleneck.
struct FleetCPU: Sendable {
    /// CPU seconds of the fleet's processes, and of its parts: HBS, the origins, the hosts
    /// (each supervisor with its agents and their self-tests).
    var fleetSeconds: Double
    var hbsSeconds: Double
    var originSeconds: Double
    var hostSeconds: Double
    var benchSeconds: Double
    /// Busy share of all cores over the interval (0...1), from /proc/stat.
    var machineBusy: Double
    var wallSeconds: Double
    var cores: Int

    /// The fleet's processes' share of all cores (0...1).
    var fleetShare: Double { wallSeconds > 0 ? fleetSeconds / wallSeconds / Double(cores) : 0 }
    /// The same in percent of the whole machine: cpu seconds / (wall seconds x cores) x 100.
    var fleetPercent: Double { fleetShare * 100 }

    /// A reading to subtract a later one from.
    struct Mark: Sendable {
        var hbs: Double
        var origins: Double
        var hosts: Double
        var bench: Double
        var machine: (busy: Double, total: Double)
        var at: ContinuousClock.Instant
    }

    static func mark(_ fleet: LocalFleet) -> Mark {
        Mark(
            hbs: ProcFS.treeSeconds(of: fleet.hbs.child.pid), origins: fleet.origins.map { ProcFS.treeSeconds(of: $0.seeder.child.pid) }.reduce(0, +),
            hosts: fleet.hosts.map { ProcFS.treeSeconds(of: $0.supervisorPID) }.reduce(0, +), bench: ProcFS.ownSeconds(),
            machine: machineTicks(), at: .now)
    }

    /// From `start` to now.
    static func since(_ start: Mark, _ fleet: LocalFleet) -> FleetCPU {
        let now = mark(fleet)
        let total = now.machine.total - start.machine.total
        let (hbs, origins, hosts) = (now.hbs - start.hbs, now.origins - start.origins, now.hosts - start.hosts)
        return FleetCPU(
            fleetSeconds: hbs + origins + hosts, hbsSeconds: hbs, originSeconds: origins, hostSeconds: hosts, benchSeconds: now.bench - start.bench,
            machineBusy: total > 0 ? (now.machine.busy - start.machine.busy) / total : 0,
            wallSeconds: (now.at - start.at).seconds, cores: ProcessInfo.processInfo.activeProcessorCount)
    }


    /// Busy and total jiffies of all cores (the `cpu` line of /proc/stat; idle and iowait are
    /// not busy).
    private static func machineTicks() -> (busy: Double, total: Double) {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return (0, 0) }
        let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard values.count >= 5 else { return (0, 0) }
        let total = values.prefix(8).reduce(0, +)
        return (total - values[3] - values[4], total)
    }
}
