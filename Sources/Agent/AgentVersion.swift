/// The agent's version, compiled in as falcon keeps it in a constant, in a fixed-width slot that
/// `fledge-seeder stamp` rewrites in a copy of the binary: tests, the demo and the bench get
/// several versions of one build without rebuilding.
public enum AgentVersion {
    /// Bytes of the marker `fledge-seeder stamp` looks for ("FLEDGE-AGENT-VERSION-SLOT:"); the
    /// version follows it, NUL-padded to 48 bytes. The marker is spelled out only inside the
    /// slot: a second copy of it in the binary would make the slot ambiguous.
    static let markerLength = 26

    /// The bytes of the slot as the binary holds them (the literal's text after the marker).
    private static let slot: StaticString =
        "FLEDGE-AGENT-VERSION-SLOT:1.0.0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"

    /// The version this binary runs as. Read from the slot's bytes at run time, never folded
    /// into a constant by the optimizer: a stamped copy must report its stamp.
    @inline(never) @_optimize(none)
    public static var current: String {
        slot.withUTF8Buffer { buffer in
            let bytes = buffer.dropFirst(markerLength).prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
