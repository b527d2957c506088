import Foundation
import SystemPackage
import FledgeTesting
import Testing
import Transfer
import Wire

/// `fledge-seeder keygen` and `publish` as a user runs them: output, files, refusals, exit codes.
@Suite struct PublishCommandTests {
    func run(_ arguments: [String]) async throws -> (exit: ChildProcess.Exit, stdout: String, stderr: String) {
        let child = try ChildProcess("fledge-seeder", arguments)
        let exit = await child.wait(timeout: .seconds(60))
        return (exit, child.stdout, child.stderr)
    }

    @Test func keygenPublishAndRepublish() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let keygen = try await run(["keygen", "--out", directory.appending("keys").string])
        #expect(keygen.exit == .exited(0), "\(keygen.stderr)")
        let keyMode = try FileManager.default.attributesOfItem(atPath: directory.appending("keys/release.key").string)[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        #expect(try await run(["keygen", "--out", directory.appending("keys").string]).exit == .exited(1), "never overwrites a key")

        let binary = try directory.randomFile("agent", size: 300_000)
        let config = try directory.write("{}", to: "agent.json")
        let arguments = ["publish", "--root", directory.appending("root").string, "--name", "fledge-agent", "--version", "1.0.0",
                         "--binary", binary.string, "--config", config.string, "--key", directory.appending("keys/release.key").string]
        let published = try await run(arguments)
        #expect(published.exit == .exited(0), "\(published.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(published.stdout.utf8)) as? [String: Any])
        #expect(summary["name"] as? String == "fledge-agent")
        #expect(summary["version"] as? String == "1.0.0")
        let files = try #require(summary["files"] as? [[String: Any]])
        #expect(files.count == 2)
        let digest = try Digest.file(at: binary)
        #expect(files[0]["sha256"] as? String == digest.sha256)
        #expect(files[0]["md5"] as? String == digest.md5)

        // Both layouts, and the falcon binary is the same bytes.
        let root = directory.appending("root")
        #expect(try Digest.file(at: root.appending("fledge-agent/bin_1.0.0")).md5 == digest.md5)
        #expect(FileManager.default.fileExists(atPath: root.appending("fledge-agent/cfg_1.0.0").string))
        let manifest = try Manifest.decode(try Files.read(root.appending("fledge-agent/1.0.0/manifest.json")))
        let verifier = ManifestVerifier(trusting: [try ReleaseKeysLoader.publicKey(directory.appending("keys/release.pub"))])
        try verifier.verify(manifest)

        // Same bytes again: fine, nothing changes. Different bytes: refused.
        #expect(try await run(arguments).exit == .exited(0))
        _ = try directory.randomFile("agent", size: 300_000, seed: 99)
        let conflict = try await run(arguments)
        #expect(conflict.exit == .exited(1))
        #expect(conflict.stderr.contains("already published with different bytes"))
        #expect(try Digest.file(at: root.appending("fledge-agent/bin_1.0.0")).md5 == digest.md5, "the published bytes are untouched")
    }

    @Test func clearErrors() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await run(["keygen", "--out", directory.appending("keys").string])
        let key = directory.appending("keys/release.key").string
        let root = directory.appending("root").string

        let missing = try await run(["publish", "--root", root, "--name", "a", "--version", "1", "--binary", "/nonexistent/bin", "--key", key])
        #expect(missing.exit == .exited(1))
        #expect(missing.stderr.contains("/nonexistent/bin is not a readable regular file"))

        let binary = try directory.randomFile("bin", size: 10).string
        let garbageKey = try directory.write("not a key", to: "bad.key").string
        let badKey = try await run(["publish", "--root", root, "--name", "a", "--version", "1", "--binary", binary, "--key", garbageKey])
        #expect(badKey.exit == .exited(1))
        #expect(badKey.stderr.contains("invalid key"))

        let noKey = try await run(["publish", "--root", root, "--name", "a", "--version", "1", "--binary", binary, "--key", "/nonexistent/key"])
        #expect(noKey.exit == .exited(1))
        #expect(noKey.stderr.contains("/nonexistent/key"))

        let badName = try await run(["publish", "--root", root, "--name", "../x", "--version", "1", "--binary", binary, "--key", key])
        #expect(badName.exit == .exited(1))
        #expect(badName.stderr.contains("name '../x'"))

        let badPiece = try await run(["publish", "--root", root, "--name", "a", "--version", "1", "--binary", binary, "--key", key, "--piece-size", "0"])
        #expect(badPiece.exit == .exited(64))

        let badListen = try await run(["serve", "--root", root, "--listen", "nowhere"])
        #expect(badListen.exit == .exited(64))
        #expect(!FileManager.default.fileExists(atPath: root + "/a"), "nothing was published by the failures")
    }
}

/// Reads a public key file the way the agent will.
enum ReleaseKeysLoader {
    static func publicKey(_ path: FilePath) throws -> Ed25519PublicKey {
        try Ed25519PublicKey(pem: String(decoding: try Files.read(path), as: UTF8.self))
    }
}
