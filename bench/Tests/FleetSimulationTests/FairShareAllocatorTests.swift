import Testing
import Wire

@testable import FleetSimulation

/// Max-min fair shares, checked by hand on small cases and by their defining property on
/// random ones.
@Suite struct FairShareAllocatorTests {
    private func rates(_ flows: [(Int32, Int32)], _ capacity: [Double]) -> [Double] {
        var allocator = FairShareAllocator()
        var rates: [Double] = []
        allocator.allocate(linkA: flows.map(\.0), linkB: flows.map(\.1), capacity: capacity, rates: &rates)
        return rates
    }

    @Test func oneLinkSharedEqually() {
        // Three flows from one uplink (cap 9) to three wide downlinks: 3 each.
        #expect(rates([(0, 1), (0, 2), (0, 3)], [9, 100, 100, 100]) == [3, 3, 3])
    }

    @Test func noFlows() {
        #expect(rates([], [5, 5]).isEmpty)
    }

    @Test func aBottleneckElsewhereLeavesMoreForTheRest() {
        // Links: 0 = up u0 (10), 1 = down d0 (2), 2 = down d1 (10), 3 = up u1 (10).
        // A: u0->d0, B: u0->d1, C: u1->d1. Shares first: u0 5, d0 2, d1 5, u1 10.
        // d0 freezes A at 2; u0 then offers 8 to B alone; d1's 5 is now the smallest: B = C = 5.
        #expect(rates([(0, 1), (0, 2), (3, 2)], [10, 2, 10, 10]) == [2, 5, 5])
    }

    @Test func aSlowReceiverFreesTheSendersCapacityForOthers() {
        // One sender (cap 12) to receivers with downlinks 1, 3 and 100: 1, 3, then the rest (8).
        #expect(rates([(0, 1), (0, 2), (0, 3)], [12, 1, 3, 100]) == [1, 3, 8])
    }

    @Test func aReceiverSharesItsDownlinkOverSenders() {
        // Receiver downlink (cap 8) fed by four senders with uplinks 1, 10, 10, 10:
        // the slow one gives 1, the others split the remaining 7.
        let result = rates([(1, 0), (2, 0), (3, 0), (4, 0)], [8, 1, 10, 10, 10])
        #expect(result[0] == 1)
        for rate in result.dropFirst() { #expect(abs(rate - 7.0 / 3) < 1e-12) }
    }

    @Test func anUnlimitedLinkNeverLimits() {
        #expect(rates([(0, 1), (0, 2)], [.infinity, 4, 6]) == [4, 6])
    }

    @Test func twoPiecesFromOnePeerAndOneFromAnother() {
        // Peer p (up 1) serves two pieces to h (down 10); peer q (up 1) one piece to h.
        #expect(rates([(0, 2), (0, 2), (1, 2)], [1, 1, 10]) == [0.5, 0.5, 1])
    }

    @Test func theAllocatorIsReusable() {
        var allocator = FairShareAllocator()
        var rates: [Double] = []
        allocator.allocate(linkA: [0, 0], linkB: [1, 2], capacity: [4, 10, 10], rates: &rates)
        #expect(rates == [2, 2])
        allocator.allocate(linkA: [0], linkB: [2], capacity: [4, 10, 1], rates: &rates)
        #expect(rates == [1])
    }

    /// Max-min fairness: no link carries more than its capacity, and every flow has a
    /// bottleneck, a full link on which no flow gets more than it does.
    @Test(arguments: 1...40) func randomCasesAreFeasibleAndMaxMinFair(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed))
        let links = 2 + random.below(12)
        let capacity = (0..<links).map { _ in Double(1 + random.below(20)) }
        let flows = (0..<(1 + random.below(30))).map { _ -> (Int32, Int32) in
            let a = random.below(links)
            var b = random.below(links)
            if b == a { b = (a + 1) % links }
            return (Int32(a), Int32(b))
        }
        let result = rates(flows, capacity)
        var load = [Double](repeating: 0, count: links)
        for (flow, (a, b)) in flows.enumerated() {
            load[Int(a)] += result[flow]
            load[Int(b)] += result[flow]
        }
        for link in 0..<links { #expect(load[link] <= capacity[link] * (1 + 1e-9)) }
        for (flow, (a, b)) in flows.enumerated() {
            let bottleneck = [Int(a), Int(b)].contains { link in
                let full = load[link] >= capacity[link] * (1 - 1e-9)
                let largest = flows.indices.filter { [Int(flows[$0].0), Int(flows[$0].1)].contains(link) }
                    .allSatisfy { result[$0] <= result[flow] * (1 + 1e-9) }
                return full && largest
            }
            #expect(bottleneck, "flow \(flow) (\(a)->\(b)) at \(result[flow]) has no bottleneck")
        }
    }
}
