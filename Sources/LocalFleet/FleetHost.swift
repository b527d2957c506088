import Foundation
import ProcessHarness
import Wire

/// One host of the fleet: a data directory with the start version installed, a config file,
/// and `fledge-agent` running under `scripts/supervise` (which restarts it into each new
/// release), serving peers on a port of its own: on 127.0.0.1, or on its address in a network
/// namespace of its own (a namespaced fleet), where it reports that address to HBS (the local
/// address of its heartbeat connection) and peers reach it there.
public final class FleetHost: Sendable {
    public let name: String
    public let data: String
    /// The address its peer server listens on: 127.0.0.1, or its namespace's.
    public let address: String
    public let peerPort: Int
    /// Its network namespace; nil on loopback.
    public let namespace: String?
    public let labels: [String: String]
    let supervisor: ChildProcess

    /// The peer port of an agent in its own namespace.
    static let namespacePeerPort = 7070

    private init(
        name: String, data: String, address: String, peerPort: Int, namespace: String?, labels: [String: String], supervisor: ChildProcess
    ) {
        self.name = name
        self.data = data
        self.address = address
        self.peerPort = peerPort
        self.namespace = namespace
        self.labels = labels
        self.supervisor = supervisor
    }

    /// Host `index` (0-based) of `plan`: installs `stamped` (the start version) under
    /// `directory/NAME`, writes its config beating to `hbs` (enrolling with its fleet token),
    /// starts it under the supervisor,
    /// in `node`'s namespace if given. Fledge's rate caps go into the config only on loopback:
    /// in a namespace the kernel holds them.
    static func start(
        index: Int, plan: FleetPlan, directory: String, hbs: HBSProcess, node: KernelLinks.Node?, publicKey: String, stamped: String
    ) async throws -> FleetHost {
        let name = String(format: "host-%02d", index + 1)
        let data = "\(directory)/\(name)"
        try await SeederCLI.install(version: plan.fromVersion, into: data, stamped: stamped)
        let rack = index % plan.racks
        let labels = ["idc": rack % 2 == 0 ? "a" : "b", "rack": "r\(rack + 1)"]
        let address = node?.address ?? Loopback.host
        let peerPort = node == nil ? try Loopback.freePort() : namespacePeerPort
        var config: [String: Any] = [
            "hbs": [hbs.agentURL], "hostname": name, "data": data, "trustedKeys": [publicKey],
            "labels": labels, "peerListen": "\(address):\(peerPort)", "heartbeatSeconds": plan.heartbeatSeconds,
            "unitPath": Supervisor.unitPath(data: data), "commitSeconds": plan.commitSeconds,
        ]
        if let token = hbs.fleetTokenFile { config["fleetTokenFile"] = token }
        if node == nil {
            if let cap = plan.agentUploadBytesPerSecond { config["peerUploadBytesPerSecond"] = cap }
            if let cap = plan.agentDownloadBytesPerSecond { config["downloadBytesPerSecond"] = cap }
        }
        if let seconds = plan.fallbackPatienceSeconds { config["fallbackPatienceSeconds"] = seconds }
        if let count = plan.piecesPerSource { config["piecesPerSource"] = count }
        if let slots = plan.peerUploadSlots { config["peerUploadSlots"] = slots }
        if let queue = plan.peerUploadQueue { config["peerUploadQueue"] = queue }
        if let count = plan.piecesInFlight { config["piecesInFlight"] = count }
        let path = "\(directory)/\(name).json"
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        let supervisor = try Supervisor.start(data: data, config: path, service: ["TimeoutStartSec": "60"], namespace: node?.namespace)
        return FleetHost(
            name: name, data: data, address: address, peerPort: peerPort, namespace: node?.namespace, labels: labels, supervisor: supervisor)
    }

    /// The version of the release `DATA/current` points at (less the `~N` of a second copy):
    /// what the supervisor starts.
    public var installedVersion: String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: data + "/current"))
            .map { ReleaseName.version(ofDirectory: ($0 as NSString).lastPathComponent) }
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
