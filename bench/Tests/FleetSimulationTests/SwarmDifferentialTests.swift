@testable import Fetch
import FledgeTesting
import Logging
import Swarm
import Testing
@testable import Transfer
import Wire

@testable import FleetSimulation

/// One scenario, fed to the agent's real downloader (a real peer and origin on loopback
/// sockets) and to the simulator's host: both must make the same choices, piece by piece and
/// source by source. Both run `PieceScheduler`; this proves the code around it (how each
/// learns a peer's availability, which sources are fallbacks, the seed share, when the
/// download starves) hands it the same world.
///
/// The scenario: a peer holding some pieces (its availability streamed in the agent, pushed
/// in the simulator), the CDN as the order's fallback, a seed share, one piece at a time, one
/// fixed tie order. Choices then follow from the policy alone, not from timing: the peer's
/// pieces rarest-first in share-then-tie order, then, once the download starves, the rest from
/// the fallback in the same order.
@Suite struct SwarmDifferentialTests {
    static var policy: SwarmPolicy {
        var policy = SwarmPolicy()
        policy.maxInFlight = 1
        policy.maxPerSource = 1
        policy.fallbackPatience = 0.2
        policy.initialPieceSeconds = 0.01
        policy.hedgeFactor = 1000  // no second copies: only the choices themselves are compared
        policy.abortFactor = 10_000
        policy.abortFloor = 60
        policy.endgamePieces = 0
        return policy
    }

    static let seed: UInt64 = 0x5eed
    static let share = SeedShare(index: 1, count: 3)

    /// What the agent's downloader chose, as (piece, "peer"/"fallback").
    static func agentChoices(in directory: TemporaryDirectory, release: TestRelease, peerHolds: [Int]) async throws -> [String] {
        let peerStore = try PieceStore(root: directory.appending("peer"))
        let peerAssembly = try peerStore.assembly(for: release.manifest)
        for index in peerHolds { try deliver(peerAssembly.piece(at: index), of: release, into: peerAssembly) }
        let peer = RangeServer(catalog: PieceStoreCatalog(store: peerStore), logger: Logger(label: "peer"))
        let origin = RangeServer(catalog: try DirectoryCatalog(root: release.root), logger: Logger(label: "origin"))
        let peerURL = "http://127.0.0.1:\(try await peer.start())"
        let originURL = "http://127.0.0.1:\(try await origin.start())"
        defer { Task { try await peer.shutdown(); try await origin.shutdown() } }
        var options = DownloadOptions()
        options.policy = policy
        options.tieSeed = seed
        options.seedShare = share
        let target = try PieceStore(root: directory.appending("target")).assembly(for: release.manifest)
        let report = try await ReleaseDownloader(assembly: target, sources: [peerURL], fallbacks: [originURL], options: options).download()
        return report.deliveries.map { "\($0.piece) \($0.source == peerURL ? "peer" : "fallback")" }
    }

    /// What the simulator's host chose for the same scenario: host 0 downloads, host 1 is the
    /// peer, node 2 the CDN.
    static func simulatorChoices(pieces: Int, peerHolds: [Int]) -> [String] {
        var swarm = PieceSwarm(hostCount: 2, nodeCount: 3, pieceCount: pieces, policy: policy, pacedDownload: nil, uplink: 1, seed: 1)
        var actions: [PieceSwarm.Action] = []
        for piece in peerHolds { _ = swarm.completed(.init(source: 2, receiver: 1, piece: Int32(piece)), bytes: 1, now: 0, actions: &actions) }
        swarm.begin(0, now: 0, share: share, seed: seed)
        let peer = swarm.add(source: 1, url: "http://peer", isFallback: false, to: 0)!
        _ = swarm.add(source: 2, url: "http://cdn", isFallback: true, to: 0)
        swarm.learn(0, source: peer)
        var now = 0.0, choices: [String] = []
        while !swarm.holdsAll(0) && now < 100 {
            actions = []
            let wake = swarm.fill(0, now: now, actions: &actions)
            guard case .start(let transfer)? = actions.first else {
                now = max(now + 0.001, wake ?? now + 0.01)  // nothing to ask now: until the scheduler's next moment
                continue
            }
            now += 0.001
            _ = swarm.completed(transfer, bytes: 1, now: now, actions: &actions)
            choices.append("\(transfer.piece) \(transfer.source == 1 ? "peer" : "fallback")")
        }
        return choices
    }

    @Test func theAgentAndTheSimulatorChooseAlike() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try TestRelease.publish(in: directory, binarySize: 96 * 1024, pieceSize: 4096)
        let pieces = release.manifest.totalPieces
        let peerHolds = stride(from: 0, to: pieces, by: 2).map { $0 }  // every other piece
        let agent = try await Self.agentChoices(in: directory, release: release, peerHolds: peerHolds)
        let simulated = Self.simulatorChoices(pieces: pieces, peerHolds: peerHolds)
        #expect(agent.count == pieces && simulated.count == pieces)
        #expect(agent == simulated, "agent: \(agent)\nsimulator: \(simulated)")
        // And the choices are the policy's: the peer's pieces first (its share of them first),
        // then the rest from the fallback.
        #expect(agent.prefix(peerHolds.count).allSatisfy { $0.hasSuffix("peer") })
        #expect(agent.dropFirst(peerHolds.count).allSatisfy { $0.hasSuffix("fallback") })
        let first = agent.prefix(peerHolds.count).map { Int($0.split(separator: " ")[0])! }
        let inShare = first.prefix { Self.share.contains($0) }
        #expect(inShare.count == peerHolds.filter(Self.share.contains).count, "the seed's share before the others")
    }

    /// A piece's bytes from the origin, verified into the assembly.
    static func deliver(_ piece: PieceRef, of release: TestRelease, into assembly: ReleaseAssembly) throws {
        let file = release.manifest.files[piece.file]
        let origin = release.root.appending(release.manifest.name).appending(release.manifest.version).appending(file.name)
        let bytes = try Files.read(origin, limit: 1 << 30)
        let range = assembly.range(of: piece)
        let slice = Array(bytes[Int(range.lowerBound)..<Int(range.upperBound)])
        try assembly.write(slice, of: piece)
        #expect(try assembly.accept(piece, sha256: Hex.encode(Digest.sha256(slice))))
    }
}
