/// What one simulated rollout did, in virtual seconds from the rollout's creation, and what
/// simulating it cost in wall-clock time.
public struct SimulationResult: Sendable {
    public var mode: SimulationMode
    public var hosts: Int
    /// When HBS marked each confirmed host done, ascending.
    public var confirmTimes: [Double]
    /// Hosts the engine gave up on (failed with no retry left), and failures counted on the way.
    public var failedHosts: Int
    public var failures: Int
    /// Whether every host ended done or failed within the time limit.
    public var settled: Bool
    /// Bytes the CDNs sent, and the peers (copies cancelled part way included).
    public var originBytes: Double
    public var peerBytes: Double
    /// Bytes of copies cancelled part way (a hedge or endgame copy that lost, one given up on).
    public var wastedBytes: Double
    /// Second copies asked for (hedges of overdue pieces, the endgame).
    public var secondCopies: Int
    /// First and last host's first order, and the last release verified.
    public var firstOrder: Double?
    public var lastFirstOrder: Double?
    public var lastVerified: Double?
    /// Orders answered to beats (first orders, retries and re-sent orders), and of those the
    /// ones re-sent during a download (with more sources).
    public var orders: Int
    public var resentOrders: Int
    public var beats: Int
    public var engine: EngineCost
    public var pieceTransfers: Int
    public var peakTransfers: Int
    public var reallocations: Int
    public var steps: Int
    public var virtualSeconds: Double
    public var wallSeconds: Double

    /// Time by which `fraction` of all hosts were confirmed; nil if they never were.
    public func confirmed(_ fraction: Double) -> Double? {
        let needed = Int((Double(hosts) * fraction).rounded(.up))
        guard needed > 0 else { return 0 }
        return needed <= confirmTimes.count ? confirmTimes[needed - 1] : nil
    }

    public var t50: Double? { confirmed(0.5) }
    public var t90: Double? { confirmed(0.9) }
    /// Every host that did not fail confirmed.
    public var t100: Double? { settled && !confirmTimes.isEmpty ? confirmTimes.last : nil }

    /// From the first order to the last verified release.
    public var distributionSeconds: Double? {
        guard let firstOrder, let lastVerified else { return nil }
        return lastVerified - firstOrder
    }

    /// From the rollout's creation to the last host's first order.
    public var controlPlaneSeconds: Double? { lastFirstOrder }
}

/// Wall-clock time spent inside the real rollout engine, by call.
public struct EngineCost: Sendable {
    public struct Calls: Sendable {
        public var count = 0
        public var seconds = 0.0
        public var slowest = 0.0

        mutating func add(_ seconds: Double) {
            count += 1
            self.seconds += seconds
            slowest = max(slowest, seconds)
        }

        public var microsecondsEach: Double { count > 0 ? seconds / Double(count) * 1e6 : 0 }
    }

    /// Beats answered with an order (admissions, retries, re-sent orders).
    public var orderBeats = Calls()
    /// Beats of hosts waiting for their turn, answered without an order.
    public var waitingBeats = Calls()
    /// Every other beat: hosts upgrading, done, failed.
    public var otherBeats = Calls()
    /// Beats not sent to the engine (their answer could not differ; see `BeatElision`).
    public var elidedBeats = 0
    public var sweeps = Calls()
    public var create = Calls()

    public var totalSeconds: Double { orderBeats.seconds + waitingBeats.seconds + otherBeats.seconds + sweeps.seconds + create.seconds }
}
