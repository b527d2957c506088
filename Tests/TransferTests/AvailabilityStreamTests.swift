import FledgeTesting
import Logging
import Swarm
import Synchronization
import Testing
@testable import Transfer
import Wire

/// A peer's availability stream on a real socket: the snapshot first, each verified piece the
/// moment it is verified, a reader resuming from its last event id hears only what it missed,
/// and `complete` ends the stream. A release not held yet streams an empty map until its
/// assembly opens.
@Suite struct AvailabilityStreamTests {
    @Test func snapshotThenEachPieceThenComplete() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try PieceStoreTests.release(in: directory)
        let store = try PieceStore(root: directory.appending("store"))
        let server = RangeServer(catalog: PieceStoreCatalog(store: store), logger: Logger(label: "peer"))
        let port = try await server.start()
        defer { Task { try await server.shutdown() } }
        let watch = PieceAvailability.watchPath(name: release.manifest.name, version: release.manifest.version)
        let total = release.manifest.totalPieces

        // Asked before this host holds anything: an empty map, then the assembly's when it opens.
        let early = try LoopbackStream(port: port, target: watch)
        #expect(try await Blocking.run { early.read { $0.contains("event: map\n") } })
        #expect(early.text.contains("text/event-stream"))
        let assembly = try store.assembly(for: release.manifest)
        let pieces = assembly.missingPieces()
        for piece in pieces.prefix(2) { try PieceStoreTests.deliver(piece, of: release, into: assembly) }
        let zeros = "data: " + String(repeating: "0", count: total) + "\n"
        #expect(try await Blocking.run { early.read { $0.contains(zeros) && $0.contains("data: 0\n") && $0.contains("data: 1\n") } },
                "the snapshot when the assembly opened, then its pieces: \(early.text)")
        let firstTwo = "data: 11" + String(repeating: "0", count: total - 2)

        let stream = try LoopbackStream(port: port, target: watch)
        #expect(try await Blocking.run { stream.read { $0.contains(firstTwo) } }, "a snapshot first: \(stream.text)")
        let id = try #require(stream.text.split(separator: "\n").first { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) })
        #expect(id.hasSuffix(".2"))
        try PieceStoreTests.deliver(pieces[5], of: release, into: assembly)
        #expect(try await Blocking.run { stream.read { $0.contains("event: have\n") && $0.contains("data: 5\n") } }, "piece 5 at once")

        // A reader that lost its stream after id E.2 resumes: only piece 5, no snapshot.
        let resumed = try LoopbackStream(port: port, target: watch, headers: ["Last-Event-ID": id])
        #expect(try await Blocking.run { resumed.read { $0.contains("data: 5\n") } })
        #expect(!resumed.text.contains("event: map"))
        let stranger = try LoopbackStream(port: port, target: watch, headers: ["Last-Event-ID": "123.1"])
        #expect(try await Blocking.run { stranger.read { $0.contains("event: map") } }, "another process's id: a snapshot")

        for piece in assembly.missingPieces() { try PieceStoreTests.deliver(piece, of: release, into: assembly) }
        try assembly.finalize()
        #expect(try await Blocking.run { stream.read { $0.contains("event: complete") && $0.contains("\r\n0\r\n\r\n") } },
                "complete, and the chunked answer ends: \(stream.text.suffix(200))")
        let later = try LoopbackStream(port: port, target: watch)
        #expect(try await Blocking.run { later.read { $0.contains("event: complete") } }, "held whole: the full map and complete at once")
        #expect(later.text.contains("data: " + String(repeating: "1", count: total)))
    }

    /// A reader naming its own range server's port is announced to the serving agent, at the
    /// address its connection came from; a port that is no port is not.
    @Test func aReaderAnnouncesItsOwnServer() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let release = try PieceStoreTests.release(in: directory)
        let store = try PieceStore(root: directory.appending("store"))
        _ = try store.assembly(for: release.manifest)
        let heard = Mutex<[String]>([])
        var settings = RangeServerConfiguration()
        settings.onPeerAnnounced = { name, version, url in heard.withLock { $0.append("\(name) \(version) \(url)") } }
        let server = RangeServer(catalog: PieceStoreCatalog(store: store), configuration: settings, logger: Logger(label: "peer"))
        let port = try await server.start()
        defer { Task { try await server.shutdown() } }
        let watch = PieceAvailability.watchPath(name: release.manifest.name, version: release.manifest.version)
        let named = try LoopbackStream(port: port, target: watch, headers: [PieceAvailability.peerPortHeader: "7071"])
        #expect(try await Blocking.run { named.read { $0.contains("event: map") } })
        let bogus = try LoopbackStream(port: port, target: watch, headers: [PieceAvailability.peerPortHeader: "99999"])
        #expect(try await Blocking.run { bogus.read { $0.contains("event: map") } })
        #expect(heard.withLock { $0 } == ["fledge-agent 1.1.0 http://127.0.0.1:7071"])
    }

    @Test func uploadSlotsQueueThenRefuseWithAnEstimate() {
        let slots = UploadSlots(limit: 1, queuePerSlot: 1, bytesPerSecond: 1_000_000)
        let granted = Atomic<Int>(0)
        #expect(slots.take(bytes: 500_000) { granted.add(1, ordering: .relaxed) } == .granted)
        guard case .queued(let token) = slots.take(bytes: 500_000, grant: { granted.add(1, ordering: .relaxed) }) else {
            Issue.record("the second waits")
            return
        }
        guard case .refused(let milliseconds) = slots.take(bytes: 500_000, grant: {}) else {
            Issue.record("the third is refused")
            return
        }
        #expect((900...1000).contains(milliseconds), "about a second's worth ahead of it: \(milliseconds) ms")
        slots.release(bytes: 500_000)
        #expect(granted.load(ordering: .relaxed) == 1 && slots.counts == (1, 0), "the waiter got the slot")
        #expect(!slots.withdraw(token), "no longer waiting")
        slots.release(bytes: 500_000)
        #expect(slots.counts == (0, 0))
    }

    @Test func eventStreamParsing() throws {
        var parser = ServerSentEventParser(maxLineBytes: 64)
        let events = try parser.feed(Array("event: map\nid: 1.2\ndata: 0110\n\n: ping\n\nevent: have\r\nid: 1.3\r\ndata: 3,4\r\n\r\nevent: ha".utf8))
        #expect(events == [ServerSentEvent(event: "map", id: "1.2", data: "0110"), ServerSentEvent(event: "have", id: "1.3", data: "3,4")])
        #expect(try parser.feed(Array("ve\ndata: 7\n\n".utf8)) == [ServerSentEvent(event: "have", id: "1.3", data: "7")], "split anywhere")
        #expect(throws: ServerSentEventParser.ParseError.lineTooLong(64)) { try parser.feed([UInt8](repeating: 65, count: 100)) }
        #expect(PieceAvailability.update(from: ServerSentEvent(event: "have", data: "3,9"), pieceCount: 5) == nil, "no piece 9")
        #expect(PieceAvailability.update(from: ServerSentEvent(event: "map", data: "01"), pieceCount: 5) == nil, "a map of another length")
        #expect(PieceAvailability.update(from: ServerSentEvent(event: "have", data: "3,4"), pieceCount: 5) == .have([3, 4]))
    }
}
