/// The links and the piece transfers on them. Every node has an uplink (hosts and CDNs), every
/// host a downlink; a transfer crosses its sender's uplink and its receiver's downlink, and the
/// rates are max-min fair over all links (`FairShareAllocator`), constant between two
/// reallocations. Transfers live in flat arrays, removed by swapping in the last one.
///
/// Transfers are moved on lazily: only up to a transfer's end, or before the rates change
/// (`clock` is the moment they were last moved to).
struct NetworkModel {
    /// A transfer that ended within a step, at `time`.
    struct Completion {
        var source: Int32
        var receiver: Int32
        var piece: Int32
        var time: Double
    }

    let nodeCount: Int
    let hostCount: Int
    /// Bytes per second: uplinks `0..<nodeCount` (node order), then host downlinks.
    private(set) var capacity: [Double]

    // One entry per transfer in flight.
    private(set) var uplink: [Int32] = []
    private(set) var downlink: [Int32] = []
    private(set) var piece: [Int32] = []
    private(set) var remaining: [Double] = []
    private(set) var rate: [Double] = []

    /// Where each transfer is in the arrays, by `key(source, receiver, piece)`: a hedged copy
    /// that lost is cancelled by name.
    private var position: [UInt64: Int32] = [:]
    /// The moment every transfer's `remaining` is as of.
    private(set) var clock = 0.0
    private var allocator = FairShareAllocator()
    /// Transfers started or ended since the last reallocation.
    private(set) var changed = false
    private(set) var reallocations = 0
    private(set) var peakTransfers = 0

    /// `uplinks[n]` for every node (hosts then CDNs), `downlinks[h]` for every host, bytes/s.
    init(uplinks: [Double], downlinks: [Double]) {
        nodeCount = uplinks.count
        hostCount = downlinks.count
        capacity = uplinks + downlinks
    }

    var transfers: Int { uplink.count }

    private static func key(_ source: Int32, _ receiver: Int32, _ piece: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: source)) << 40 | UInt64(UInt32(bitPattern: receiver)) << 20 | UInt64(UInt32(bitPattern: piece))
    }

    /// A new transfer, from `clock` on (move the others to the present first).
    mutating func start(from source: Int, to receiver: Int, piece index: Int, bytes: Double) {
        position[Self.key(Int32(source), Int32(nodeCount + receiver), Int32(index))] = Int32(uplink.count)
        uplink.append(Int32(source))
        downlink.append(Int32(nodeCount + receiver))
        piece.append(Int32(index))
        remaining.append(bytes)
        rate.append(0)
        changed = true
        peakTransfers = max(peakTransfers, uplink.count)
    }

    /// New max-min fair rates, when transfers came or went since the last ones.
    mutating func reallocate() {
        guard changed else { return }
        changed = false
        reallocations += 1
        allocator.allocate(linkA: uplink, linkB: downlink, capacity: capacity, rates: &rate)
    }

    /// The earliest moment a transfer ends at the current rates (infinity when none moves).
    func nextCompletion() -> Double {
        var soonest = Double.infinity
        for index in 0..<remaining.count where rate[index] > 0 {
            soonest = min(soonest, remaining[index] / rate[index])
        }
        return clock + soonest
    }

    /// Moves every transfer from `clock` to `end` at its rate; those that finish are removed
    /// and appended to `completed`, with the moment each finished.
    mutating func advance(to end: Double, completed: inout [Completion]) {
        let start = clock
        let span = end - start
        guard span > 0 else { return }
        clock = end
        var index = 0
        while index < remaining.count {
            let speed = rate[index]
            let left = remaining[index]
            // A transfer within a nanosecond of its end is done (rounding).
            if speed > 0 && left <= speed * (span + 1e-9) {
                completed.append(Completion(
                    source: uplink[index], receiver: downlink[index] - Int32(nodeCount), piece: piece[index],
                    time: min(end, start + left / speed)))
                remove(at: index)
            } else {
                remaining[index] = left - speed * span
                index += 1
            }
        }
    }

    /// Stops a transfer (a copy that lost, or one given up on), at `clock` (move the transfers
    /// to the present first); the bytes it had carried, or nil if there was no such transfer.
    mutating func cancel(from source: Int, to receiver: Int, piece index: Int, bytes: Double) -> Double? {
        guard let at = position[Self.key(Int32(source), Int32(nodeCount + receiver), Int32(index))] else { return nil }
        let carried = bytes - remaining[Int(at)]
        remove(at: Int(at))
        return carried
    }

    private mutating func remove(at index: Int) {
        position[Self.key(uplink[index], downlink[index], piece[index])] = nil
        let last = uplink.count - 1
        if index != last {
            position[Self.key(uplink[last], downlink[last], piece[last])] = Int32(index)
            uplink[index] = uplink[last]
            downlink[index] = downlink[last]
            piece[index] = piece[last]
            remaining[index] = remaining[last]
            rate[index] = rate[last]
        }
        uplink.removeLast()
        downlink.removeLast()
        piece.removeLast()
        remaining.removeLast()
        rate.removeLast()
        changed = true
    }
}
