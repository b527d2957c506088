import ProcessHarness

/// One origin of the fleet: `fledge-seeder serve` over the fleet's origin tree, under its
/// upload cap: on a free loopback port with the seeder's own `--rate`, or in a network
/// namespace of its own on port 8080 with the kernel shaping its link.
public struct FleetOrigin: Sendable {
    public let seeder: SeederProcess
    /// Its upload cap, whoever holds it; nil: none.
    public let bytesPerSecond: Int64?

    /// The port an origin listens on in its own namespace.
    static let namespacePort = 8080

    public var url: String { seeder.baseURL }

    /// Starts it on loopback (`node` nil) or in `node`'s namespace, where the seeder's rate
    /// limiter is off.
    static func start(root: String, bytesPerSecond: Int64?, node: KernelLinks.Node?) async throws -> FleetOrigin {
        guard let node else {
            return FleetOrigin(seeder: try await SeederProcess.start(root: root, rate: bytesPerSecond), bytesPerSecond: bytesPerSecond)
        }
        let seeder = try await SeederProcess.start(root: root, namespace: node.namespace, host: node.address, port: namespacePort)
        return FleetOrigin(seeder: seeder, bytesPerSecond: bytesPerSecond)
    }

    /// Bytes it has served so far, by its own request log (see `ServedBytes`).
    public var servedBytes: Int64 { ServedBytes.total(inLog: seeder.child.stderr) }

    func stop() async { await seeder.child.stop(grace: .seconds(3)) }
}
