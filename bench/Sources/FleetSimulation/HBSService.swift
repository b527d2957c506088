/// What HBS takes to answer the fleet at a rollout's start, as measured on the real fledge-hbs:
/// the simulator's engine calls cost no virtual time, so without this every waiting host would
/// hear of a rollout the instant it was created. The waiting hosts (one long-poll each) are
/// spread evenly over the instances; each instance answers its own, the first batch first (as
/// `RolloutSignal` wakes them), at its measured rate, from when it knows of the rollout: once
/// it is created and durable where it was posted, `followSeconds` later at the others.
public struct HBSService: Sendable, Equatable {
    /// Instances sharing the fleet through one Redis.
    public var instances: Int
    /// From the POST until the rollout is durable (and its waiting hosts are woken), per host
    /// it targets.
    public var createSecondsPerHost: Double
    /// Hosts one instance answers per second once it knows of the rollout: woken, beat taken,
    /// written, answered.
    public var answersPerSecond: Double
    /// From a rollout's creation at one instance until another wakes its hosts: Redis's epoch
    /// interval (250 ms), read on the next beat it answers.
    public var followSeconds: Double

    public init(instances: Int, createSecondsPerHost: Double, answersPerSecond: Double, followSeconds: Double) {
        self.instances = instances
        self.createSecondsPerHost = createSecondsPerHost
        self.answersPerSecond = answersPerSecond
        self.followSeconds = followSeconds
    }

    /// One instance as measured on this project's 2-core VM (load generator on the same
    /// cores): 17,930 hosts answered per second after the POST's answer, 19,000 real
    /// long-polls in one batch (`bench/results/wake-up-N19000-2026-12-01.txt`); the POST of a
    /// rollout of 100,000 hosts answered in 0.25 s on Redis, 0.20 s embedded (`fledge-bench
    /// hbs --hosts 100000`, `bench/results/hbs-N100000-2026-12-01.txt`).
    public static let measured = HBSService(
        instances: 1, createSecondsPerHost: 0.25 / 100_000, answersPerSecond: 17_930, followSeconds: 0.25)

    /// When each host hears of the rollout, seconds after the POST, by host index; `order`
    /// lists every host, the first batch first. Host `h` waits at instance `h % instances`;
    /// the first instance is the one the rollout was posted to.
    public func answerTimes(order: [Int], targets: Int) -> [Double] {
        let created = createSecondsPerHost * Double(targets)
        let instances = max(1, self.instances)
        var answered = [Int](repeating: 0, count: instances)
        var times = [Double](repeating: 0, count: order.count)
        for host in order {
            let instance = host % instances
            answered[instance] += 1
            times[host] = created + (instance == 0 ? 0 : followSeconds) + Double(answered[instance]) / answersPerSecond
        }
        return times
    }
}
