/// The `tc tbf` qdisc that caps one kernel-shaped link of a namespaced fleet at a payload rate,
/// with burst and queue chosen for rates from a few Mbit/s to 1 Gbit/s.
///
/// - rate: tbf counts whole frames, so a TCP stream's goodput is 1448/1514 of its rate (MTU
///   1500: 14 bytes of Ethernet, 20 of IP, 32 of TCP with timestamps per 1448 of payload;
///   measured 0.956 here). The rate is the cap times 1514/1448, so the payload goodput is the
///   cap, as under Fledge's rate limiters, and T_min compares like with like.
/// - burst: max(16 KiB, 1 ms at the rate). 16 KiB is eleven full frames, so a low rate is not
///   held to one frame per token refill, and an idle link sends at most 16 KiB ahead of its
///   rate (3 % of a 512 KiB piece); at 1 Gbit/s 1 ms (131 KB) keeps the bucket from running
///   dry between the timer's wake-ups. Goodput of one TCP stream through an uplink and a
///   downlink so shaped: 1.00 x the cap (within 1 %) at 4, 8, 100 and 1000 Mbit/s. GSO
///   packets (up to 64 KB) larger than the burst are split by tbf into frames, which costs
///   CPU: a 128 KiB burst (no splitting) took a 32-agent fleet's CPU from 64 to 54 % of two
///   cores, without changing its upgrade time, but would let an idle 4 Mbit/s link send a
///   quarter second's worth at once; the caps' fidelity at the scale of a piece won.
/// - limit (queue): the burst plus 100 ms at the rate: a buffer like a real access link's,
///   deep enough that the 16-32 flows of a swarm into one host do not lose a packet each
///   round trip, shallow enough that heartbeats and piece-map polls queued behind a download
///   wait at most 100 ms.
public struct TokenBucket: Sendable, Equatable {
    /// The cap it stands for: payload bytes per second.
    public var payloadBytesPerSecond: Int64

    /// Frame bytes over payload bytes of a full-sized TCP segment (MTU 1500, timestamps on).
    public static let frameOverhead = 1514.0 / 1448.0
    /// The burst's floor, bytes.
    public static let minimumBurst: Int64 = 16 << 10

    public init(payloadBytesPerSecond: Int64) {
        self.payloadBytesPerSecond = payloadBytesPerSecond
    }

    /// The rate tbf enforces, frame bytes per second.
    public var frameBytesPerSecond: Int64 { Int64((Double(payloadBytesPerSecond) * Self.frameOverhead).rounded(.up)) }
    public var rateBitsPerSecond: Int64 { frameBytesPerSecond * 8 }
    public var burstBytes: Int64 { max(Self.minimumBurst, frameBytesPerSecond / 1000) }
    public var limitBytes: Int64 { burstBytes + frameBytesPerSecond / 10 }

    /// What follows `tc qdisc add dev DEV root`.
    public var tcArguments: [String] {
        ["tbf", "rate", "\(rateBitsPerSecond)bit", "burst", "\(burstBytes)", "limit", "\(limitBytes)"]
    }
}
