import Foundation
import ProcessHarness
import SystemPackage

/// The fleet's releases, made with `fledge-seeder` as an operator makes them: a signing key
/// pair, the start version stamped once (hard-linked into every host), and the target version
/// (a stamped agent, padded to the planned size, and a unit file) signed into the origin tree.
/// No config file is published: a release's config replaces every host's own, and hosts on
/// one machine differ in data directory and ports.
struct FleetRelease: Sendable {
    let directory: String
    var keys: String { directory + "/keys" }
    var publicKey: String { keys + "/release.pub" }
    var privateKey: String { keys + "/release.key" }
    /// The start version's binary, stamped.
    var startBinary: String { directory + "/fledge-agent-start" }

    /// Makes the keys and the start version's binary in `directory`.
    static func prepare(_ plan: FleetPlan, in directory: String) async throws -> FleetRelease {
        let release = FleetRelease(directory: directory)
        try await SeederCLI.keygen(into: release.keys)
        try await SeederCLI.stamp(version: plan.fromVersion, to: release.startBinary)
        return release
    }

    /// Publishes the target version into `root`; what `publish` printed about it.
    func publishTarget(_ plan: FleetPlan, into root: String) async throws -> SeederCLI.Published {
        let staged = directory + "/build-\(plan.toVersion)"
        try FileManager.default.createDirectory(atPath: staged, withIntermediateDirectories: true)
        let binary = staged + "/fledge-agent", unit = staged + "/fledge-agent.service"
        try await SeederCLI.stamp(version: plan.toVersion, to: binary)
        // The unit it ships is the one in deploy/, as a real release would: every host installs it.
        try FileManager.default.copyItem(atPath: Binaries.deployFile("fledge-agent.service"), toPath: unit)
        if let size = plan.releaseSize {
            let used = try Self.size(of: binary) + Self.size(of: unit)
            guard size >= used else { throw LocalFleetError.releaseTooSmall(requested: size, binary: used) }
            try RandomFile.write(FilePath(binary), size: size - used, seed: 11, appending: true)
        }
        return try await SeederCLI.publish(
            root: root, version: plan.toVersion, binary: binary, unit: unit, key: privateKey, pieceSize: plan.pieceSize)
    }

    private static func size(of path: String) throws -> Int64 {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
    }
}
