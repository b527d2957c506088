/// A rollout's readings over time, and what is read off them: when a share of the hosts was
/// confirmed, measured from the rollout's POST.
public struct RolloutTimeline: Sendable {
    public private(set) var samples: [FleetSample] = []

    public init() {}

    /// Adds a reading, the latest last.
    public mutating func add(_ sample: FleetSample) { samples.append(sample) }

    public var last: FleetSample? { samples.last }

    /// Seconds until at least `fraction` of the hosts (rounded up) were confirmed; nil if never.
    public func seconds(toFraction fraction: Double) -> Double? {
        guard let hosts = samples.last?.progress.hosts, hosts > 0 else { return nil }
        let wanted = max(1, Int((Double(hosts) * fraction - 1e-9).rounded(.up)))
        return samples.first { $0.progress.done >= wanted }?.seconds
    }

    /// (seconds, hosts confirmed) at each change of the count, starting at (0, 0): the curve
    /// to plot.
    public var confirmedCurve: [(seconds: Double, done: Int)] {
        var points: [(seconds: Double, done: Int)] = [(0, 0)]
        for sample in samples where sample.progress.done != points.last!.done {
            points.append((sample.seconds, sample.progress.done))
        }
        return points
    }
}
