/// Seconds as a `Double`, the unit of every config knob, wire field and report in Fledge: one
/// definition for all modules (it had been written five times).
extension Duration {
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
