import Foundation
import FledgeTesting
import Logging
import SystemPackage
import Testing
import Transfer
import Wire
@testable import Agent

/// Orders the executor refuses before fetching anything; the running version stays.
@Suite struct UpgradeExecutorTests {
    static func executor(in directory: TemporaryDirectory, running version: String) throws -> (UpgradeExecutor, AgentStatus) {
        let status = AgentStatus()
        let layout = ReleaseLayout(data: directory.path)
        let executor = UpgradeExecutor(
            layout: layout, configuration: AgentConfiguration(hbs: ["http://127.0.0.1:1"], data: directory.string, trustedKeys: ["k"]),
            configPath: "/dev/null", verifier: ManifestVerifier(trusting: []), store: try PieceStore(root: layout.store),
            status: status, version: version, logger: Logger(label: "test"))
        return (executor, status)
    }

    static func order(_ version: String, downgrade: Bool? = nil) -> UpgradeOrder {
        UpgradeOrder(rolloutId: "r1", name: "fledge-agent", version: version, locator: .fledge(manifestURL: nil),
                     sources: ["http://127.0.0.1:1"], deadline: 0, allowsDowngrade: downgrade)
    }

    @Test(arguments: ["1.2.0", "1.10.0", "1.9.9"])
    func versionNotNewerIsRefused(_ target: String) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (executor, status) = try Self.executor(in: directory, running: "1.10.0")
        #expect(await executor.execute(Self.order(target)) == false)
        #expect(status.current.state == .failed)
        #expect(status.current.error?.contains("is not newer than 1.10.0") == true, "\(String(describing: status.current.error))")
        #expect(status.current.failures["floor"] == 1)
        #expect(!Files.exists(ReleaseLayout(data: directory.path).pending))
    }

    /// A rollback order goes down only to this host's previous release, never anywhere else
    /// (an old signed release is no licence to install it), and never below the floor.
    @Test func aRollbackGoesOnlyToThePreviousRelease() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (executor, status) = try Self.executor(in: directory, running: "1.10.0")
        #expect(await executor.execute(Self.order("1.10.0", downgrade: true)) == false)
        #expect(status.current.error?.contains("previous release (none)") == true, "\(String(describing: status.current.error))")
        let layout = ReleaseLayout(data: directory.path)
        try Files.makeDirectory(layout.release("1.9.0"))
        try FileManager.default.createSymbolicLink(atPath: layout.previous.string, withDestinationPath: layout.release("1.9.0").string)
        #expect(await executor.execute(Self.order("1.8.0", downgrade: true)) == false)
        #expect(status.current.error?.contains("only to this host's previous release (1.9.0), not 1.8.0") == true,
                "\(String(describing: status.current.error))")
        // The previous release is allowed: it gets as far as fetching (nobody listens here).
        #expect(await executor.execute(Self.order("1.9.0", downgrade: true)) == false)
        #expect(status.current.error?.contains("every source failed") == true, "\(String(describing: status.current.error))")
        // Unless a release this host confirmed declared a minimum above it.
        try JSONSerialization.data(withJSONObject: ["highestConfirmed": "1.10.0", "minimumVersion": "1.10.0"])
            .write(to: URL(fileURLWithPath: layout.floor.string))
        #expect(await executor.execute(Self.order("1.9.0", downgrade: true)) == false)
        #expect(status.current.error?.contains("below 1.10.0, the minimum a release confirmed here declared") == true,
                "\(String(describing: status.current.error))")
        #expect(status.current.failures["floor"] == 3)
    }

    /// After a rollback from 1.10.0 to 1.9.0, an "upgrade" to 1.9.5 is still below the highest
    /// version this host confirmed.
    @Test func anUpgradeNeverLandsBelowTheHighestConfirmed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (executor, status) = try Self.executor(in: directory, running: "1.9.0")
        try JSONSerialization.data(withJSONObject: ["highestConfirmed": "1.10.0"])
            .write(to: URL(fileURLWithPath: ReleaseLayout(data: directory.path).floor.string))
        #expect(await executor.execute(Self.order("1.9.5")) == false)
        #expect(status.current.error?.contains("below 1.10.0, the highest version this host confirmed") == true,
                "\(String(describing: status.current.error))")
    }

    /// A falcon order (md5 only) to an agent that has not opted in is refused before a byte is
    /// fetched, with the switch to set.
    @Test func aFalconOrderNeedsTheOptIn() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (executor, status) = try Self.executor(in: directory, running: "1.0.0")
        let order = UpgradeOrder(rolloutId: "r1", name: "fledge-agent", version: "1.1.0",
                                 locator: .falcon(wgetURL: "http://127.0.0.1:1", type: 0, binMD5: String(repeating: "a", count: 32), cfgMD5: ""),
                                 sources: ["http://127.0.0.1:1"], deadline: 0)
        #expect(await executor.execute(order) == false)
        #expect(status.current.error?.contains("set allowFalcon: true") == true, "\(String(describing: status.current.error))")
        #expect(status.current.failures["unsigned"] == 1)
    }
}
