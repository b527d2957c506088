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
        #expect(status.current.failures["refused"] == 1)
        #expect(!Files.exists(ReleaseLayout(data: directory.path).pending))
    }

    @Test func aRollbackOrderMayGoDownButNotToItself() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (executor, status) = try Self.executor(in: directory, running: "1.10.0")
        #expect(await executor.execute(Self.order("1.10.0", downgrade: true)) == false)
        #expect(status.current.error?.contains("not newer") == true)
        // Down is allowed for a rollback: it gets as far as fetching (nobody listens here).
        #expect(await executor.execute(Self.order("1.9.0", downgrade: true)) == false)
        #expect(status.current.error?.contains("every source failed") == true, "\(String(describing: status.current.error))")
    }
}
