import FledgeTesting

/// One origin of the fleet: `fledge-seeder serve` over the fleet's origin tree on a free
/// loopback port, under its upload cap.
public struct FleetOrigin: Sendable {
    public let seeder: SeederProcess
    public let bytesPerSecond: Int64?

    public var url: String { seeder.baseURL }

    static func start(root: String, bytesPerSecond: Int64?) async throws -> FleetOrigin {
        FleetOrigin(seeder: try await SeederProcess.start(root: root, rate: bytesPerSecond), bytesPerSecond: bytesPerSecond)
    }

    /// Bytes it has served so far, by its own request log (see `ServedBytes`).
    public var servedBytes: Int64 { ServedBytes.total(inLog: seeder.child.stderr) }

    func stop() async { await seeder.child.stop(grace: .seconds(3)) }
}
