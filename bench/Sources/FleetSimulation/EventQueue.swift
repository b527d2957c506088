/// The simulation's discrete events, earliest first; events at the same moment come out in the
/// order they were scheduled, so a run replays exactly.
struct EventQueue {
    enum Kind: UInt8 {
        /// A host beats to HBS, on its grid.
        case beat
        /// HBS answers every waiting (long-polling) host at once: the rollout started.
        case wakeUp
        /// A host's new version is installed and restarting: it beats "restarting", then the new
        /// version beats.
        case restart
        /// A host reports its failed install.
        case installFailed
        /// HBS's periodic sweep.
        case sweep
        /// A failed host's retry is due: the sweep puts it back to pending.
        case retryDue
        /// An upgrading host's deadline passes: the sweep fails it if it has not confirmed.
        case deadlineDue
        /// Something in a host's download may have come due (a deadline, a busy peer's hint,
        /// starving long enough for the fallback, the download cap): it looks again.
        case wake
        /// The availability of one of a host's sources (`generation`: its index) arrives.
        case learn
        /// A piece (`generation`) a host verified reaches the hosts watching it.
        case availability
    }

    struct Event {
        var time: Double
        var sequence: UInt64
        var host: Int32
        var kind: Kind
        /// For beats: the host's beat generation when scheduled (a beat rescheduled since is
        /// stale); for availability, the piece or the source.
        var generation: UInt32

        func before(_ other: Event) -> Bool {
            time < other.time || (time == other.time && sequence < other.sequence)
        }
    }

    private var heap: [Event] = []
    private var sequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var nextTime: Double? { heap.first?.time }

    mutating func schedule(_ kind: Kind, host: Int, at time: Double, generation: UInt32 = 0) {
        sequence += 1
        let event = Event(time: time, sequence: sequence, host: Int32(host), kind: kind, generation: generation)
        heap.append(event)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if !event.before(heap[parent]) { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = event
    }

    /// The earliest event if it is due at or before `time`.
    mutating func pop(dueBy time: Double) -> Event? {
        guard let top = heap.first, top.time <= time else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return top }
        var parent = 0
        let count = heap.count
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && heap[child + 1].before(heap[child]) { child += 1 }
            if !heap[child].before(last) { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = last
        return top
    }
}
