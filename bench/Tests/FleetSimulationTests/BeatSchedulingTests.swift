import Testing

@testable import FleetSimulation

/// The pieces that decide which beats reach the engine: parked hosts found in beat order, and
/// the gate that says no waiting host can be admitted.
@Suite struct BeatSchedulingTests {
    @Test func theParkedHostThatBeatsFirstIsFound() {
        var parking = PhaseParking(hosts: 5, interval: 1, bucketCount: 8)
        parking.park(0, batch: 0, anchor: 10.30)
        parking.park(1, batch: 0, anchor: 0.70)
        parking.park(2, batch: 0, anchor: 5.95)
        parking.park(3, batch: 1, anchor: 0.50)
        #expect(parking.successor(in: 0, after: 7.20)?.host == 0)  // .30 next
        #expect(parking.successor(in: 0, after: 7.31)?.host == 1)  // .70
        #expect(parking.successor(in: 0, after: 7.96)?.host == 0)  // wraps to .30
        #expect(parking.successor(in: 1, after: 0.0)?.host == 3)
        #expect(abs(parking.successor(in: 0, after: 7.80)!.at - 7.95) < 1e-9)
        parking.remove(2)
        #expect(parking.successor(in: 0, after: 7.80)?.host == 0)
        #expect(!parking.isParked(2) && parking.isParked(1))
        #expect(parking.batches == [0, 1])
        parking.remove(3)
        #expect(parking.batches == [0])
        #expect(parking.successor(in: 1, after: 0) == nil)
    }

    @Test func hostsInOneBucketAreOrderedByPhase() {
        var parking = PhaseParking(hosts: 3, interval: 1, bucketCount: 2)
        parking.park(0, batch: 0, anchor: 0.40)
        parking.park(1, batch: 0, anchor: 0.10)
        parking.park(2, batch: 0, anchor: 0.30)
        #expect(parking.successor(in: 0, after: 0.20)?.host == 2)
        #expect(parking.successor(in: 0, after: 0.45)?.host == 1)  // next round
    }

    @Test func theGateClosesWhenNoCDNSlotAndNoPeerIsFree() {
        // Hosts 0-3, a CDN (node 4) with 2 slots, peers serve 1 download each.
        var gate = AdmissionGate(hosts: 4, nodes: 5, cdnSlots: [(node: 4, slots: 2)], fanout: 1)
        #expect(!gate.closed)
        gate.fetching(0, from: 4)
        gate.fetching(1, from: 4)
        #expect(gate.closed)
        gate.serving(0, true)  // host 0 holds the release: one free peer
        #expect(!gate.closed && gate.freePeers == 1)
        gate.fetching(0, from: nil)  // done fetching: a CDN slot frees as well
        #expect(gate.freeCDNSlots == 1)
        gate.fetching(2, from: 0)
        gate.fetching(3, from: 4)
        #expect(gate.closed)
        gate.fetching(2, from: nil)
        #expect(gate.freePeers == 1)
    }
}
