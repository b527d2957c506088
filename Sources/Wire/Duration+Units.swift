/// A `Duration` in the units Fledge's configs, wire fields, reports and event loops use: one
/// definition for all modules (`seconds` had been written five times).
extension Duration {
    /// Seconds as a `Double`, fractions included.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// Whole milliseconds, for poll timeouts.
    public var milliseconds: Int { Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000) }
    /// Whole nanoseconds, for NIO's TimeAmount.
    public var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
