import Swarm
import Synchronization
import Wire

/// The pieces of one release this host holds verified, in the order it verified them, and who
/// is listening: what its availability stream (`PieceAvailability`) tells. The assembly records
/// each piece as it verifies it; the range server subscribes a listener per stream.
///
/// A log may exist before the release's manifest is known here (a peer asked before this host
/// got its order): it then reports an empty map until the assembly attaches, and its listeners
/// get a snapshot at that moment.
public final class AvailabilityLog: Sendable {
    /// Hears each update with its event id; called under the log's lock, so it must only hand
    /// the event on (to an event loop), never block.
    public typealias Listener = @Sendable (ServerSentEvent) -> Void

    /// This log's instance: event ids from another instance (another process) cannot resume.
    let epoch = UInt64.random(in: 1...UInt64(UInt32.max))
    private let state = Mutex(State())

    private struct State {
        var pieceCount: Int?
        var verified = PieceSet(capacity: 0)
        var order: [Int] = []
        var complete = false
        var listeners: [Int: Listener] = [:]
        var nextToken = 0
    }

    public init() {}

    /// A log of a release held whole.
    static func complete(pieceCount: Int) -> AvailabilityLog {
        let log = AvailabilityLog()
        log.attach(pieceCount: pieceCount, verified: Array(0..<pieceCount), complete: true)
        return log
    }

    private func id(_ state: State) -> String { "\(epoch).\(state.order.count)" }

    /// The release's shape is known (its assembly opened): `verified` are the pieces already on
    /// disk, in index order. Listeners get a snapshot.
    func attach(pieceCount: Int, verified: [Int], complete: Bool) {
        state.withLock { state in
            guard state.pieceCount == nil else { return }
            state.pieceCount = pieceCount
            state.verified = PieceSet(capacity: pieceCount, verified)
            state.order = verified
            state.complete = complete
            let snapshot = PieceAvailability.event(.snapshot(state.verified), id: id(state))
            for listener in state.listeners.values { listener(snapshot) }
            if complete { finish(&state) }
        }
    }

    /// A piece (index over the whole release) was verified.
    func record(_ piece: Int) {
        state.withLock { state in
            guard let count = state.pieceCount, piece < count, state.verified.insert(piece) else { return }
            state.order.append(piece)
            let event = PieceAvailability.event(.have([piece]), id: id(state))
            for listener in state.listeners.values { listener(event) }
        }
    }

    /// Every piece is verified and final.
    func markComplete() {
        state.withLock { state in
            guard !state.complete, state.pieceCount != nil else { return }
            state.complete = true
            finish(&state)
        }
    }

    /// `complete` to every listener, which then ends its stream: nobody listens any more.
    private func finish(_ state: inout State) {
        let event = PieceAvailability.event(.complete, id: id(state))
        for listener in state.listeners.values { listener(event) }
        state.listeners = [:]
    }

    /// The map now (empty while the release's shape is unknown).
    public var current: PieceSet { state.withLock { $0.verified } }

    /// Whether the release's shape is known here (its assembly opened, or it is held whole).
    var isAttached: Bool { state.withLock { $0.pieceCount != nil } }

    /// Listens from now on. Returns the events to send first (a snapshot, or what a reader
    /// resuming from `lastEventID` missed; and `complete` if the release is whole) and a token
    /// to stop listening, or nil when there will be nothing more (complete).
    func subscribe(lastEventID: String?, _ listener: @escaping Listener) -> (first: [ServerSentEvent], token: Int?) {
        state.withLock { state in
            var first: [ServerSentEvent] = []
            if let lastEventID, let resumed = missed(since: lastEventID, state) {
                if !resumed.isEmpty { first.append(PieceAvailability.event(.have(resumed), id: id(state))) }
            } else {
                first.append(PieceAvailability.event(.snapshot(state.verified), id: id(state)))
            }
            if state.complete {
                first.append(PieceAvailability.event(.complete, id: id(state)))
                return (first, nil)
            }
            let token = state.nextToken
            state.nextToken += 1
            state.listeners[token] = listener
            return (first, token)
        }
    }

    /// Pieces verified after the event `lastEventID` of this log; nil when it is not one of
    /// this log's ids (another process, or garbage): the reader needs a snapshot.
    private func missed(since lastEventID: String, _ state: State) -> [Int]? {
        let parts = lastEventID.split(separator: ".")
        guard parts.count == 2, UInt64(parts[0]) == epoch, let count = Int(parts[1]), count >= 0, count <= state.order.count,
              state.pieceCount != nil
        else { return nil }
        return Array(state.order[count...])
    }

    func unsubscribe(_ token: Int) {
        _ = state.withLock { $0.listeners.removeValue(forKey: token) }
    }

    /// Streams open on this log.
    var listenerCount: Int { state.withLock { $0.listeners.count } }
}
