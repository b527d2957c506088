import Foundation
import FledgeTesting

/// One host of the fleet: a data directory with the start version installed, a config file,
/// and `fledge-agent` running under `scripts/supervise` (which restarts it into each new
/// release), serving peers on a port of its own.
public final class FleetHost: Sendable {
    public let name: String
    public let data: String
    public let peerPort: Int
    public let labels: [String: String]
    let supervisor: ChildProcess

    private init(name: String, data: String, peerPort: Int, labels: [String: String], supervisor: ChildProcess) {
        self.name = name
        self.data = data
        self.peerPort = peerPort
        self.labels = labels
        self.supervisor = supervisor
    }

    /// Host `index` (0-based) of `plan`: installs `stamped` (the start version) under
    /// `directory/NAME`, writes its config beating to `hbsPort`, starts it under the supervisor.
    static func start(
        index: Int, plan: FleetPlan, directory: String, hbsPort: Int, publicKey: String, stamped: String
    ) async throws -> FleetHost {
        let name = String(format: "host-%02d", index + 1)
        let data = "\(directory)/\(name)"
        try await SeederCLI.install(version: plan.fromVersion, into: data, stamped: stamped)
        let rack = index % plan.racks
        let labels = ["idc": rack % 2 == 0 ? "a" : "b", "rack": "r\(rack + 1)"]
        let peerPort = try Loopback.freePort()
        var config: [String: Any] = [
            "hbs": ["http://\(Loopback.host):\(hbsPort)"], "hostname": name, "data": data, "trustedKeys": [publicKey],
            "labels": labels, "peerListen": "\(Loopback.host):\(peerPort)", "heartbeatSeconds": plan.heartbeatSeconds,
        ]
        if let cap = plan.agentUploadBytesPerSecond { config["peerUploadBytesPerSecond"] = cap }
        if let cap = plan.agentDownloadBytesPerSecond { config["downloadBytesPerSecond"] = cap }
        if let seconds = plan.fallbackPatienceSeconds { config["fallbackPatienceSeconds"] = seconds }
        if let count = plan.piecesPerSource { config["piecesPerSource"] = count }
        if let slots = plan.peerUploadSlots { config["peerUploadSlots"] = slots }
        let path = "\(directory)/\(name).json"
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        let supervisor = try Supervisor.start(data: data, config: path, confirmSeconds: 60)
        return FleetHost(name: name, data: data, peerPort: peerPort, labels: labels, supervisor: supervisor)
    }

    /// The release `DATA/current` points at: what the supervisor starts.
    public var installedVersion: String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: data + "/current")).map { ($0 as NSString).lastPathComponent }
    }

    /// What its supervisor and agents have written (stderr of every agent it started).
    public var log: String { supervisor.stderr }

    /// Bytes its peer server has sent, by the agents' request logs (see `ServedBytes`).
    public var servedBytes: Int64 { ServedBytes.total(inLog: supervisor.stderr) }

    public var isRunning: Bool { supervisor.isRunning }

    /// The supervisor's process id; its agent is its child.
    public var supervisorPID: Int32 { supervisor.pid }

    /// SIGTERM to the supervisor (which stops its agent), SIGKILL to both after a grace period.
    func stop() async { await Supervisor.stop(supervisor, grace: .seconds(5)) }
}
