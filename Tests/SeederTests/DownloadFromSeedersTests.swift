import Fetch
import Foundation
import FledgeTesting
import SystemPackage
import Testing
import Transfer
import Wire

/// The downloader against real `fledge-seeder serve` processes on loopback: a corrupt source,
/// a source that dies mid-body, every source bad, and falcon's whole-file mode.
@Suite struct DownloadFromSeedersTests {
    static func options() -> DownloadOptions {
        var options = DownloadOptions()
        options.policy.maxInFlight = 8
        options.policy.maxPerSource = 4
        options.stallSeconds = 5
        return options
    }

    /// Flips bytes inside piece `index` of the binary under an origin copy.
    static func corrupt(root: FilePath, release: TestRelease, pieceIndex: Int) throws {
        let file = release.manifest.files[0]
        for path in [root.appending("\(release.manifest.name)/\(release.manifest.version)/\(file.name)")] {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path.string))
            try handle.seek(toOffset: UInt64(Int64(pieceIndex) * release.manifest.pieceSize + 100))
            try handle.write(contentsOf: Data([0xDE, 0xAD, 0xBE, 0xEF]))
            try handle.close()
        }
    }

    static func expectIdentical(_ release: TestRelease, in store: PieceStore) throws {
        let directory = store.releaseDirectory(name: release.manifest.name, version: release.manifest.version)
        for file in release.manifest.files {
            let got = try Data(contentsOf: URL(fileURLWithPath: directory.appending(file.name).string))
            let want = try Data(contentsOf: URL(fileURLWithPath: release.inputs[file.role.rawValue]!.string))
            #expect(got == want, "\(file.name) differs")
        }
    }

    @Test func corruptSourceIsBannedAndTheDownloadSucceeds() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory)
        let corruptRoot = directory.appending("corrupt-origin")
        try release.copyOrigin(to: corruptRoot)
        // Every piece of the binary: pieces go in an order of each download's own, so whichever
        // the bad origin is asked for first must be a corrupt one.
        for piece in 0..<release.manifest.files[0].pieces.count { try Self.corrupt(root: corruptRoot, release: release, pieceIndex: piece) }
        let bad = try await SeederProcess.start(root: corruptRoot.string)
        let good = try await SeederProcess.start(root: release.root.string)
        defer { bad.kill(); good.kill() }

        let store = try PieceStore(root: directory.appending("store"))
        let downloader = ReleaseDownloader(
            assembly: try store.assembly(for: release.manifest), sources: [bad.baseURL, good.baseURL], options: Self.options())
        let report = try await downloader.download()
        try Self.expectIdentical(release, in: store)
        let dropped = try #require(report.droppedSources.first)
        #expect(dropped.source == bad.baseURL)
        #expect(dropped.reason.contains("corrupt piece") && dropped.reason.contains("of fledge-agent"))
        #expect(report.bytesBySource[good.baseURL]! > 0)
        #expect(report.fetchedBytes == release.manifest.totalSize)
    }

    @Test func sourceDyingMidBodyLosesItsPiecesToTheNext() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory)
        // The first source trickles at 20 kB/s, so its pieces are mid-body when it is killed.
        let dying = try await SeederProcess.start(root: release.root.string, rate: 20_000)
        let good = try await SeederProcess.start(root: release.root.string, rate: 4_000_000)
        defer { dying.kill(); good.kill() }

        let store = try PieceStore(root: directory.appending("store"))
        let downloader = ReleaseDownloader(
            assembly: try store.assembly(for: release.manifest), sources: [dying.baseURL, good.baseURL], options: Self.options())
        async let download = downloader.download()
        try await Task.sleep(for: .milliseconds(400))
        dying.kill()
        let report = try await download
        try Self.expectIdentical(release, in: store)
        #expect(report.bytesBySource[dying.baseURL, default: 0] < release.manifest.totalSize / 4)
        #expect(report.receivedBytes >= report.fetchedBytes)
    }

    @Test func everySourceBadFailsNamingEachAndLeavesNothingFinal() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory)
        let corruptRoot = directory.appending("corrupt-origin")
        try release.copyOrigin(to: corruptRoot)
        for piece in 0..<release.manifest.files[0].pieces.count { try Self.corrupt(root: corruptRoot, release: release, pieceIndex: piece) }
        let corrupt = try await SeederProcess.start(root: corruptRoot.string)
        let empty = try await SeederProcess.start(root: directory.appending("keys").string)  // has no releases: 404
        defer { corrupt.kill(); empty.kill() }
        let nobody = "http://\(Loopback.host):\(try Loopback.freePort())"

        let store = try PieceStore(root: directory.appending("store"))
        var options = Self.options()
        options.policy.failureLimit = 2
        let downloader = ReleaseDownloader(
            assembly: try store.assembly(for: release.manifest), sources: [corrupt.baseURL, empty.baseURL, nobody], options: options)
        do {
            _ = try await downloader.download()
            Issue.record("downloaded from bad sources")
        } catch {
            guard case .allSourcesFailed(let failures) = error else { Issue.record("wrong error: \(error)"); return }
            #expect(failures.count == 3)
            let reasons = Dictionary(failures.map { ($0.source, $0.reason) }, uniquingKeysWith: { a, _ in a })
            #expect(reasons[corrupt.baseURL]?.contains("corrupt") == true, "\(reasons)")
            #expect(reasons[empty.baseURL]?.contains("HTTP 404") == true, "\(reasons)")
            #expect(reasons[nobody]?.lowercased().contains("connect") == true, "\(reasons)")
            #expect(error.description.contains(nobody))
        }
        let releaseDirectory = store.releaseDirectory(name: release.manifest.name, version: release.manifest.version)
        let visible = try FileManager.default.contentsOfDirectory(atPath: releaseDirectory.string).filter { !$0.hasPrefix(".") }
        #expect(visible.isEmpty, "nothing partial has a final name: \(visible)")
    }

    @Test func falconWholeFileWithMD5() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory, binarySize: 500_000)
        let seeder = try await SeederProcess.start(root: release.root.string)
        defer { seeder.kill() }
        let wgetURL = "\(seeder.baseURL)/fledge-agent"
        let url = WholeFileDownloader.falconURL(wgetURL: wgetURL, version: "1.1.0")
        #expect(url == "\(seeder.baseURL)/fledge-agent/bin_1.1.0")
        let binary = release.manifest.files[0]
        let destination = directory.appending("fledge-agent.new")

        let wrong = WholeFileDownloader(options: Self.options())
        #expect(throws: TransferError.self) { try wrong.fetch(urls: [url], md5: String(repeating: "0", count: 32), to: destination) }
        #expect(!FileManager.default.fileExists(atPath: destination.string))
        #expect(!FileManager.default.fileExists(atPath: destination.string + ".part"))

        let missing = "\(seeder.baseURL)/fledge-agent/bin_9.9.9"
        let result = try WholeFileDownloader(options: Self.options()).fetch(urls: [missing, url], md5: binary.md5, to: destination)
        #expect(result.sha256 == binary.sha256)
        #expect(result.size == binary.size)
        let mode = try FileManager.default.attributesOfItem(atPath: destination.string)[.posixPermissions] as? Int
        #expect(mode == 0o755)
    }
}

/// `fledge-seeder mirror` killed with SIGKILL half-way and started again: it resumes, fetching
/// fewer bytes than the whole, and ends byte-identical.
@Suite struct MirrorResumeTests {
    @Test func killedMirrorResumes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory, binarySize: 3 << 20)
        let seeder = try await SeederProcess.start(root: release.root.string)
        defer { seeder.kill() }
        let mirrorRoot = directory.appending("mirror").string
        let arguments = ["mirror", "--root", mirrorRoot, "--name", "fledge-agent", "--version", "1.1.0",
                         "--source", seeder.baseURL, "--pubkey", release.publicKeyPath.string]

        let first = try ChildProcess("fledge-seeder", arguments + ["--rate", "1000000", "--parallel", "2"])
        // It prints a progress line per tenth of the release: kill it after the third.
        let halfway = await ChildProcess.waitFor(seconds: 20) {
            first.stderr.split(separator: "\n").filter { $0.hasPrefix("progress") }.count >= 3
        }
        first.kill()
        #expect(halfway, "the first run made progress before it was killed: \(first.stderr)")
        #expect(!FileManager.default.fileExists(atPath: mirrorRoot + "/fledge-agent/1.1.0/manifest.json"))

        let second = try ChildProcess("fledge-seeder", arguments)
        #expect(await second.wait(timeout: .seconds(60)) == .exited(0), "\(second.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
        let fetched = try #require(summary["fetchedBytes"] as? Int)
        let resumed = try #require(summary["resumedBytes"] as? Int)
        #expect(resumed > 0)
        #expect(fetched < Int(release.manifest.totalSize))
        #expect(fetched + resumed == Int(release.manifest.totalSize))
        for file in release.manifest.files {
            #expect(try Digest.file(at: FilePath(mirrorRoot + "/fledge-agent/1.1.0/\(file.name)")).sha256 == file.sha256)
        }
        #expect(try Digest.file(at: FilePath(mirrorRoot + "/fledge-agent/bin_1.1.0")).md5 == release.manifest.files[0].md5)
    }

    @Test func tamperedManifestIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory)
        let manifestPath = release.root.appending("fledge-agent/1.1.0/manifest.json")
        var manifest = release.manifest
        manifest.files[0].mode = 0o4755
        try manifest.encoded().write(to: URL(fileURLWithPath: manifestPath.string))
        let seeder = try await SeederProcess.start(root: release.root.string)
        defer { seeder.kill() }
        let mirrorRoot = directory.appending("mirror").string
        let child = try ChildProcess("fledge-seeder", ["mirror", "--root", mirrorRoot, "--name", "fledge-agent", "--version", "1.1.0",
                                                       "--source", seeder.baseURL, "--pubkey", release.publicKeyPath.string])
        #expect(await child.wait(timeout: .seconds(30)) == .exited(1))
        #expect(child.stderr.contains("signature does not verify"), "\(child.stderr)")
        #expect(!FileManager.default.fileExists(atPath: mirrorRoot + "/fledge-agent"))
    }
}
