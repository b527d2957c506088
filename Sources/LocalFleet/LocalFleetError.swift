/// Why a local fleet could not be started, upgraded or measured, said so that the reader knows
/// what to do next: the command to build a missing product, the host whose log to read, the
/// rollout's own words.
public enum LocalFleetError: Error, CustomStringConvertible {
    /// The plan asks for something that cannot run (no agents, a cap of 0).
    case invalidPlan(String)
    /// A product of this package is not built where the fleet looks for it.
    case missingProduct(name: String, path: String)
    /// The release was asked to be smaller than the agent binary it carries.
    case releaseTooSmall(requested: Int64, binary: Int64)
    /// Agents that did not report their first version to HBS in time, with the end of a log.
    case agentsDidNotRegister(hosts: [String], seconds: Double, log: String)
    /// HBS refused the rollout.
    case rolloutRefused(status: Int, body: String)
    /// HBS stopped answering the admin API.
    case hbsUnreachable(String)
    /// The rollout paused (failure budget) or was aborted.
    case rolloutStopped(phase: String, reason: String, failed: [String])
    /// The rollout did not complete in time.
    case rolloutTimedOut(seconds: Double, counts: [String: Int])
    /// A namespaced fleet cannot run here (not root, iproute2 missing, the kernel refusing).
    case namespacesUnavailable(String)
    /// Another namespaced fleet, or something else, holds the network a namespaced fleet needs.
    case networkInUse(String)
    /// A command building the namespaced network failed (what it built is removed again).
    case networkSetupFailed(command: String, output: String)

    public var description: String {
        switch self {
        case .invalidPlan(let reason):
            "invalid fleet plan: \(reason)"
        case .missingProduct(let name, let path):
            "\(path) not found: build it (swift build -c release --product \(name), same --scratch-path as this program), or point FLEDGE_BIN_DIR at the directory holding it"
        case .releaseTooSmall(let requested, let binary):
            "a release of \(requested) bytes cannot carry the stamped fledge-agent (\(binary) bytes): ask for at least \((binary >> 20) + 1) MiB"
        case .agentsDidNotRegister(let hosts, let seconds, let log):
            "\(hosts.count) agent(s) did not beat to HBS within \(Int(seconds)) s (\(hosts.prefix(5).joined(separator: ", "))); the first one's log ends:\n\(log)"
        case .rolloutRefused(let status, let body):
            "HBS refused the rollout (HTTP \(status)): \(body)"
        case .hbsUnreachable(let detail):
            "fledge-hbs stopped answering its admin API: \(detail)"
        case .rolloutStopped(let phase, let reason, let failed):
            "the rollout is \(phase): \(reason)\(failed.isEmpty ? "" : "; failed hosts: " + failed.prefix(5).joined(separator: "; "))"
        case .namespacesUnavailable(let reason):
            "cannot shape links in the kernel: \(reason)"
        case .networkInUse(let detail):
            "the namespaced network is in use: \(detail)"
        case .networkSetupFailed(let command, let output):
            "building the fleet's network failed at `\(command)`: \(output.isEmpty ? "(no message)" : output). What it had built is removed again."
        case .rolloutTimedOut(let seconds, let counts):
            "the rollout did not complete within \(Int(seconds)) s; hosts by phase: \(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))"
        }
    }
}
