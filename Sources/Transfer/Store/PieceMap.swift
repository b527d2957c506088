/// Which pieces of a release a host holds verified, as its range server publishes them at
/// `/_fledge/pieces/NAME/VERSION`: one ASCII `1` or `0` per piece, files in manifest order.
/// A downloader reads its peers' maps to ask each only for what it has, rarest pieces first.
public struct PieceMap: Sendable, Equatable {
    public private(set) var bits: [Bool]

    public init(bits: [Bool]) { self.bits = bits }

    public init(complete count: Int) { bits = Array(repeating: true, count: count) }

    /// Parses a map served for a release of `count` pieces; nil if it is not one. An empty map
    /// is a peer that holds none of them yet.
    public init?(text: [UInt8], count: Int) {
        let trimmed = text.last == UInt8(ascii: "\n") ? text.dropLast() : text[...]
        if trimmed.isEmpty {
            bits = Array(repeating: false, count: count)
            return
        }
        guard trimmed.count == count else { return nil }
        var bits: [Bool] = []
        bits.reserveCapacity(count)
        for byte in trimmed {
            switch byte {
            case UInt8(ascii: "1"): bits.append(true)
            case UInt8(ascii: "0"): bits.append(false)
            default: return nil
            }
        }
        self.bits = bits
    }

    /// The path a range server answers with the map of `name` `version`. Four components, so
    /// it can never be a release file (`NAME/VERSION/FILE`).
    public static func path(name: String, version: String) -> String { "/_fledge/pieces/\(name)/\(version)" }

    /// Whether request path components ask for a map: the release they name.
    static func release(in components: [String]) -> (name: String, version: String)? {
        guard components.count == 4, components[0] == "_fledge", components[1] == "pieces" else { return nil }
        return (components[2], components[3])
    }

    public var text: [UInt8] { bits.map { $0 ? UInt8(ascii: "1") : UInt8(ascii: "0") } + [UInt8(ascii: "\n")] }
    public var count: Int { bits.count }
    public var verifiedCount: Int { bits.lazy.filter { $0 }.count }
    public var isComplete: Bool { !bits.contains(false) }
    public subscript(index: Int) -> Bool { index < bits.count && bits[index] }
}
