import Foundation
import Seeder
import SystemPackage
import Transfer
import Wire

/// A signed release published into an origin root, for tests: random binary, small config
/// and unit, a fresh key pair written as files.
public struct TestRelease: Sendable {
    public let root: FilePath
    public let keyDirectory: FilePath
    public let key: Ed25519PrivateKey
    public let manifest: Manifest
    public let inputs: [String: FilePath]

    public static func publish(
        in directory: TemporaryDirectory, name: String = "fledge-agent", version: String = "1.1.0",
        binarySize: Int = 3 << 20, pieceSize: Int64 = 64 * 1024, seed: UInt64 = 7
    ) throws -> TestRelease {
        let keyDirectory = directory.appending("keys")
        _ = try ReleaseKeys.generate(into: keyDirectory)
        let key = try ReleaseKeys.loadPrivate(keyDirectory.appending(ReleaseKeys.privateKeyName))
        let inputs = directory.appending("inputs")
        try FileManager.default.createDirectory(atPath: inputs.string, withIntermediateDirectories: true)
        let input = TemporaryDirectory(existing: inputs)
        let binary = try input.randomFile(name, size: binarySize, seed: seed)
        let config = try input.write("{\"hbs\":[\"http://127.0.0.1:6030\"]}\n", to: "\(name).json")
        let unit = try input.write("[Service]\nExecStart=/usr/bin/\(name)\nRestart=always\n", to: "\(name).service")
        let root = directory.appending("origin")
        let manifest = try Publisher(root: root, key: key).publish(
            .init(name: name, version: version, binary: binary, config: config, unit: unit, pieceSize: pieceSize))
        return TestRelease(root: root, keyDirectory: keyDirectory, key: key, manifest: manifest,
                           inputs: ["bin": binary, "cfg": config, "unit": unit])
    }

    public var publicKeyPath: FilePath { keyDirectory.appending(ReleaseKeys.publicKeyName) }

    public func publicKey() throws -> Ed25519PublicKey { try key.publicKey }

    /// Copies the origin tree to `target` (for a second seeder, or one to corrupt).
    public func copyOrigin(to target: FilePath) throws {
        try FileManager.default.copyItem(atPath: root.string, toPath: target.string)
    }
}

