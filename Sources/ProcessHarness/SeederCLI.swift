import Foundation

/// `fledge-seeder` run as an operator runs it (keygen, stamp, publish), each to its end: how
/// tests, the local fleet and the benches make keys, agent binaries of any version, and signed
/// releases.
public enum SeederCLI {
    /// What `fledge-seeder publish` printed about a release.
    public struct Published: Sendable {
        public var totalSize: Int64
        public var pieceSize: Int64
        public var pieces: Int
        /// Path of the signed manifest.
        public var manifest: String
    }

    /// `keygen --out directory`: `release.key` (0600) and `release.pub` in `directory`.
    public static func keygen(into directory: String) async throws {
        _ = try await ChildProcess.run(Binaries.path("fledge-seeder"), ["keygen", "--out", directory])
    }

    /// `stamp`: a copy of `binary` (default: the built fledge-agent) at `output`, reporting `version`.
    public static func stamp(_ binary: String = Binaries.path("fledge-agent"), version: String, to output: String) async throws {
        _ = try await ChildProcess.run(Binaries.path("fledge-seeder"), [
            "stamp", "--binary", binary, "--version", version, "--out", output])
    }

    /// Installs a stamped fledge-agent `version` in an agent's data directory as its running
    /// release: `DATA/releases/VERSION/fledge-agent`, `DATA/current -> releases/VERSION`.
    /// `stamped`: a copy stamped already, hard-linked in (many hosts, one copy on disk; the
    /// agent never writes to a release it runs); otherwise one is stamped for this host.
    public static func install(version: String, into data: String, stamped: String? = nil) async throws {
        let binary = data + "/releases/\(version)/fledge-agent"
        try FileManager.default.createDirectory(atPath: data + "/releases/\(version)", withIntermediateDirectories: true)
        if let stamped {
            if link(stamped, binary) != 0 { try FileManager.default.copyItem(atPath: stamped, toPath: binary) }
        } else {
            try await stamp(version: version, to: binary)
        }
        try FileManager.default.createSymbolicLink(atPath: data + "/current", withDestinationPath: data + "/releases/\(version)")
    }

    /// `resign`: a new expiry (and signatures by `keys`) for a published release, its bytes unchanged.
    public static func resign(root: String, name: String = "fledge-agent", version: String, keys: [String]) async throws {
        _ = try await ChildProcess.run(
            Binaries.path("fledge-seeder"), ["resign", "--root", root, "--name", name, "--version", version] + keys.flatMap { ["--key", $0] })
    }

    /// `publish`: signs `binary` (and the config and unit, when given) as release `name`
    /// `version` into the origin tree `root`.
    @discardableResult
    public static func publish(
        root: String, name: String = "fledge-agent", version: String, binary: String, config: String? = nil,
        unit: String? = nil, key: String, pieceSize: Int64? = nil, extra: [String] = []
    ) async throws -> Published {
        var arguments = ["publish", "--root", root, "--name", name, "--version", version, "--binary", binary, "--key", key] + extra
        if let config { arguments += ["--config", config] }
        if let unit { arguments += ["--unit", unit] }
        if let pieceSize { arguments += ["--piece-size", "\(pieceSize)"] }
        let (output, _) = try await ChildProcess.run(Binaries.path("fledge-seeder"), arguments)
        guard let summary = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
              let total = (summary["totalSize"] as? NSNumber)?.int64Value, let size = (summary["pieceSize"] as? NSNumber)?.int64Value,
              let pieces = summary["pieces"] as? Int, let manifest = summary["manifest"] as? String
        else { throw HarnessError("fledge-seeder publish printed no summary: \(output.prefix(300))") }
        return Published(totalSize: total, pieceSize: size, pieces: pieces, manifest: manifest)
    }
}
