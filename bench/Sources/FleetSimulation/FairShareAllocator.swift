/// Max-min fair rates for flows that each cross two links (a sender's uplink and a receiver's
/// downlink), by progressive filling: every flow's rate rises at the same pace until some link
/// is full; the flows through that link keep the rate they have, the others go on rising.
///
/// The link whose flows freeze next is the one with the smallest fair share, remaining
/// capacity over unfrozen flows, kept in an indexed binary heap over the links that carry
/// flows. Freezing a flow at the smallest share can only raise the share of its other link,
/// which then moves down the heap. One call costs O((F + L) log L) for F flows over L links in
/// use, whatever the number of links in the model.
///
/// Scratch space is kept between calls: reuse one allocator for every reallocation. Not
/// thread-safe (one simulation owns it).
public struct FairShareAllocator {
    private let scratch = Scratch()

    public init() {}

    /// Writes into `rates[f]` the max-min fair rate of flow `f`, which crosses links `linkA[f]`
    /// and `linkB[f]` (indices into `capacity`, in bytes per second; `.infinity` for a link
    /// that never limits). `rates` gets exactly one entry per flow.
    public mutating func allocate(linkA: [Int32], linkB: [Int32], capacity: [Double], rates: inout [Double]) {
        let flowCount = linkA.count
        precondition(linkB.count == flowCount, "every flow crosses two links")
        if rates.count != flowCount { rates = [Double](repeating: 0, count: flowCount) }
        guard flowCount > 0 else { return }
        linkA.withUnsafeBufferPointer { a in
            linkB.withUnsafeBufferPointer { b in
                capacity.withUnsafeBufferPointer { capacity in
                    rates.withUnsafeMutableBufferPointer { rates in
                        scratch.allocate(a, b, capacity, rates)
                    }
                }
            }
        }
    }
}

/// The allocator's working memory, raw so the inner loops run without bounds or uniqueness
/// checks; sized up as needed and kept. Holds only plain values (no references).
private final class Scratch {
    /// Per model link: the call in which it got a local index, and that index.
    private var seenIn = Buffer<UInt32>()
    private var localOf = Buffer<Int32>()
    private var call: UInt32 = 0
    // Per local link (a link carrying at least one flow in this call).
    private var remaining = Buffer<Double>()
    private var unfrozen = Buffer<Int32>()
    private var share = Buffer<Double>()
    private var firstMember = Buffer<Int32>()
    private var cursor = Buffer<Int32>()
    /// Position in the heap, -1 once out of it.
    private var position = Buffer<Int32>()
    private var heap = Buffer<Int32>()
    // Per flow: its two local links; flows grouped by local link (each flow twice).
    private var localA = Buffer<Int32>()
    private var localB = Buffer<Int32>()
    private var members = Buffer<Int32>()

    func allocate(
        _ linkA: UnsafeBufferPointer<Int32>, _ linkB: UnsafeBufferPointer<Int32>, _ capacity: UnsafeBufferPointer<Double>,
        _ rates: UnsafeMutableBufferPointer<Double>
    ) {
        let flowCount = linkA.count
        seenIn.grow(to: capacity.count, keeping: true)
        localOf.grow(to: capacity.count)
        call &+= 1
        if call == 0 {  // wrapped: forget every old mark
            for index in 0..<seenIn.count { seenIn[index] = 0 }
            call = 1
        }
        let linkLimit = min(capacity.count, 2 * flowCount)
        remaining.grow(to: linkLimit)
        share.grow(to: linkLimit)
        unfrozen.grow(to: linkLimit)
        firstMember.grow(to: linkLimit + 1)
        cursor.grow(to: linkLimit + 1)
        position.grow(to: linkLimit)
        heap.grow(to: linkLimit)
        localA.grow(to: flowCount)
        localB.grow(to: flowCount)
        members.grow(to: 2 * flowCount)

        // Local indices for the links in use, and flows per link.
        var links = 0
        func local(_ model: Int) -> Int32 {
            if seenIn[model] != call {
                seenIn[model] = call
                localOf[model] = Int32(links)
                remaining[links] = capacity[model]
                unfrozen[links] = 0
                links += 1
            }
            let index = localOf[model]
            unfrozen[Int(index)] += 1
            return index
        }
        for flow in 0..<flowCount {
            localA[flow] = local(Int(linkA[flow]))
            localB[flow] = local(Int(linkB[flow]))
            rates[flow] = -1  // not frozen yet
        }

        // Flows grouped by link (counting sort): members[firstMember[l] ..< firstMember[l + 1]].
        firstMember[0] = 0
        for link in 0..<links { firstMember[link + 1] = firstMember[link] + unfrozen[link] }
        for link in 0...links { cursor[link] = firstMember[link] }
        for flow in 0..<flowCount {
            let a = Int(localA[flow]), b = Int(localB[flow])
            members[Int(cursor[a])] = Int32(flow)
            cursor[a] += 1
            members[Int(cursor[b])] = Int32(flow)
            cursor[b] += 1
        }

        // Every link in the heap on its fair share (heapify).
        for link in 0..<links {
            share[link] = remaining[link] / Double(unfrozen[link])
            heap[link] = Int32(link)
            position[link] = Int32(link)
        }
        var count = links
        if count > 1 { for index in stride(from: count / 2 - 1, through: 0, by: -1) { siftDown(index, count) } }

        while count > 0 {
            let link = Int(heap[0])
            count -= 1
            position[link] = -1
            if count > 0 {
                heap[0] = heap[count]
                position[Int(heap[0])] = 0
                siftDown(0, count)
            }
            guard unfrozen[link] > 0 else { continue }
            let rate = max(0, share[link])
            for slot in Int(firstMember[link])..<Int(firstMember[link + 1]) {
                let flow = Int(members[slot])
                if rates[flow] >= 0 { continue }
                rates[flow] = rate
                let other = Int(localA[flow]) == link ? Int(localB[flow]) : Int(localA[flow])
                if other == link { continue }
                unfrozen[other] -= 1
                remaining[other] = max(0, remaining[other] - rate)
                let at = Int(position[other])
                if at < 0 { continue }
                // Its share can only rise (up to rounding): it moves down, or (rounding) up.
                share[other] = unfrozen[other] > 0 ? remaining[other] / Double(unfrozen[other]) : .infinity
                siftUp(at)
                siftDown(Int(position[other]), count)
            }
            unfrozen[link] = 0
        }
    }

    private func siftDown(_ start: Int, _ count: Int) {
        var parent = start
        let moving = heap[parent]
        let key = share[Int(moving)]
        while true {
            var child = 2 * parent + 1
            if child >= count { break }
            if child + 1 < count && share[Int(heap[child + 1])] < share[Int(heap[child])] { child += 1 }
            if key <= share[Int(heap[child])] { break }
            heap[parent] = heap[child]
            position[Int(heap[parent])] = Int32(parent)
            parent = child
        }
        heap[parent] = moving
        position[Int(moving)] = Int32(parent)
    }

    private func siftUp(_ start: Int) {
        var child = start
        let moving = heap[child]
        let key = share[Int(moving)]
        while child > 0 {
            let parent = (child - 1) / 2
            if share[Int(heap[parent])] <= key { break }
            heap[child] = heap[parent]
            position[Int(heap[child])] = Int32(child)
            child = parent
        }
        heap[child] = moving
        position[Int(moving)] = Int32(child)
    }
}

/// A raw, growable array of plain values (integers, doubles), zero-filled when it grows.
private final class Buffer<Element> {
    private var base: UnsafeMutablePointer<Element>
    private(set) var count: Int

    init() {
        count = 16
        base = .allocate(capacity: count)
        UnsafeMutableRawPointer(base).initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<Element>.stride)
    }

    /// At least `needed` elements, the old ones copied over when `keeping`.
    func grow(to needed: Int, keeping: Bool = false) {
        guard needed > count else { return }
        let size = max(needed, count * 2)
        let fresh = UnsafeMutablePointer<Element>.allocate(capacity: size)
        UnsafeMutableRawPointer(fresh).initializeMemory(as: UInt8.self, repeating: 0, count: size * MemoryLayout<Element>.stride)
        if keeping { UnsafeMutableRawPointer(fresh).copyMemory(from: base, byteCount: count * MemoryLayout<Element>.stride) }
        base.deallocate()
        base = fresh
        count = size
    }

    @inline(__always) subscript(index: Int) -> Element {
        get { base[index] }
        set { base[index] = newValue }
    }

    deinit { base.deallocate() }
}
