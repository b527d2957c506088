/// Max-min fair rates for flows that each cross two links (a sender's uplink and a receiver's
/// downlink), by progressive filling: every flow's rate rises at the same pace until some link
/// is full; the flows through that link keep the rate they have, the others go on rising.
///
/// The link whose flows freeze next is the one with the smallest fair share, remaining
/// capacity over unfrozen flows, found with a binary heap over the links that carry flows.
/// Freezing a flow at the smallest share can only raise the share of its other link, so stale
/// heap entries are smaller than the fresh ones and are skipped when popped. One call costs
/// O(F log F) for F flows, whatever the number of links in the model.
///
/// Scratch space is kept between calls: reuse one allocator for every reallocation.
public struct FairShareAllocator: Sendable {
    private struct Entry {
        var share: Double
        var link: Int32
        var stamp: UInt32
    }

    /// Per model link: the call in which it got a local index, and that index.
    private var seenIn: [UInt32] = []
    private var localOf: [Int32] = []
    private var call: UInt32 = 0
    /// Per local link (links that carry at least one flow in this call).
    private var remaining: [Double] = []
    private var unfrozen: [Int32] = []
    private var stamps: [UInt32] = []
    private var firstMember: [Int32] = []
    /// Flows grouped by local link: each flow appears twice, once per link.
    private var members: [Int32] = []
    private var frozen: [Bool] = []
    private var localA: [Int32] = []
    private var localB: [Int32] = []
    private var heap: [Entry] = []

    public init() {}

    /// Writes into `rates[f]` the max-min fair rate of flow `f`, which crosses links `linkA[f]`
    /// and `linkB[f]` (indices into `capacity`, in bytes per second; `.infinity` for a link
    /// that never limits). `rates` gets exactly one entry per flow.
    public mutating func allocate(linkA: [Int32], linkB: [Int32], capacity: [Double], rates: inout [Double]) {
        let flowCount = linkA.count
        precondition(linkB.count == flowCount, "every flow crosses two links")
        if rates.count != flowCount { rates = [Double](repeating: 0, count: flowCount) }
        guard flowCount > 0 else { return }
        if seenIn.count < capacity.count {
            seenIn += [UInt32](repeating: 0, count: capacity.count - seenIn.count)
            localOf += [Int32](repeating: 0, count: capacity.count - localOf.count)
        }
        call &+= 1
        if call == 0 {  // wrapped: forget every old mark
            for index in seenIn.indices { seenIn[index] = 0 }
            call = 1
        }
        remaining.removeAll(keepingCapacity: true)
        unfrozen.removeAll(keepingCapacity: true)
        localA.removeAll(keepingCapacity: true)
        localB.removeAll(keepingCapacity: true)
        localA.reserveCapacity(flowCount)
        localB.reserveCapacity(flowCount)

        // Local indices for the links in use, and flow counts per link.
        for flow in 0..<flowCount {
            localA.append(local(Int(linkA[flow]), capacity))
            localB.append(local(Int(linkB[flow]), capacity))
        }
        let linkCount = remaining.count
        stamps.removeAll(keepingCapacity: true)
        stamps.append(contentsOf: repeatElement(0, count: linkCount))

        // Flows grouped by link (counting sort): members[firstMember[l] ..< firstMember[l + 1]].
        firstMember.removeAll(keepingCapacity: true)
        firstMember.append(contentsOf: repeatElement(0, count: linkCount + 1))
        for link in 0..<linkCount { firstMember[link + 1] = firstMember[link] + unfrozen[link] }
        members.removeAll(keepingCapacity: true)
        members.append(contentsOf: repeatElement(0, count: 2 * flowCount))
        var cursor = firstMember
        for flow in 0..<flowCount {
            let a = Int(localA[flow]), b = Int(localB[flow])
            members[Int(cursor[a])] = Int32(flow)
            cursor[a] += 1
            members[Int(cursor[b])] = Int32(flow)
            cursor[b] += 1
        }
        frozen.removeAll(keepingCapacity: true)
        frozen.append(contentsOf: repeatElement(false, count: flowCount))

        heap.removeAll(keepingCapacity: true)
        for link in 0..<linkCount { push(Entry(share: remaining[link] / Double(unfrozen[link]), link: Int32(link), stamp: 0)) }

        while let top = pop() {
            let link = Int(top.link)
            guard unfrozen[link] > 0, top.stamp == stamps[link] else { continue }
            let share = max(0, top.share)
            for slot in Int(firstMember[link])..<Int(firstMember[link + 1]) {
                let flow = Int(members[slot])
                if frozen[flow] { continue }
                frozen[flow] = true
                rates[flow] = share
                let other = Int(localA[flow]) == link ? Int(localB[flow]) : Int(localA[flow])
                if other == link { continue }  // both ends on one link: counted twice there
                unfrozen[other] -= 1
                remaining[other] = max(0, remaining[other] - share)
                stamps[other] &+= 1
                if unfrozen[other] > 0 {
                    push(Entry(share: remaining[other] / Double(unfrozen[other]), link: Int32(other), stamp: stamps[other]))
                }
            }
            unfrozen[link] = 0
        }
    }

    /// The local index of model link `link`, made on first use in this call; counts one more flow.
    private mutating func local(_ link: Int, _ capacity: [Double]) -> Int32 {
        if seenIn[link] != call {
            seenIn[link] = call
            localOf[link] = Int32(remaining.count)
            remaining.append(capacity[link])
            unfrozen.append(0)
        }
        let index = Int(localOf[link])
        unfrozen[index] += 1
        return Int32(index)
    }

    // MARK: Binary heap on `share`

    private mutating func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if heap[parent].share <= entry.share { break }
            heap[child] = heap[parent]
            child = parent
        }
        heap[child] = entry
    }

    private mutating func pop() -> Entry? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        guard !heap.isEmpty else { return top }
        var parent = 0
        let count = heap.count
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && heap[child + 1].share < heap[child].share { child += 1 }
            if last.share <= heap[child].share { break }
            heap[parent] = heap[child]
            parent = child
        }
        heap[parent] = last
        return top
    }
}
