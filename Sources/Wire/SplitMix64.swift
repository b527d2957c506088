/// A small, fast, seeded generator, and its mixing step as a hash: the one source of "random
/// but replayable" in Fledge. A download's tie order, a planner's peer sample, a simulation and
/// a test file all draw from it, so a seed replays the same choices everywhere.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// Uniform in `0..<bound` (bound > 0); the tiny modulo bias does not matter here.
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// SplitMix64's finalizer: a well-spread 64-bit hash of `value`.
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The `index`-th value of the stream seeded with `seed`, without drawing the ones before.
    @inline(__always)
    public static func value(seed: UInt64, index: UInt64) -> UInt64 {
        mix(seed &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15)
    }
}
