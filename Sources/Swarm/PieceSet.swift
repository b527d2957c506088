/// Which pieces of a release someone holds: a fixed-size bitset over the release's pieces
/// (files in manifest order). What a host has verified, what a peer's availability says it
/// serves, what a download still wants.
///
/// Its text form is what a peer publishes at its piece-map endpoint: one ASCII `1` or `0` per
/// piece.
public struct PieceSet: Sendable, Hashable {
    /// Pieces of the release (the set's capacity).
    public let capacity: Int
    public private(set) var words: [UInt64]
    /// Pieces in the set.
    public private(set) var count: Int

    /// The empty set over `capacity` pieces.
    public init(capacity: Int) {
        precondition(capacity >= 0)
        self.capacity = capacity
        words = [UInt64](repeating: 0, count: (capacity + 63) >> 6)
        count = 0
    }

    /// Every piece.
    public init(full capacity: Int) {
        self.init(capacity: capacity)
        for word in words.indices { words[word] = ~0 }
        if capacity & 63 != 0 { words[words.count - 1] = (1 << UInt64(capacity & 63)) - 1 }
        count = capacity
    }

    public init<S: Sequence<Int>>(capacity: Int, _ pieces: S) {
        self.init(capacity: capacity)
        for piece in pieces { insert(piece) }
    }

    /// Parses the text form for a release of `capacity` pieces (a trailing newline allowed);
    /// nil if it is not one. An empty text is a peer that holds none yet.
    public init?<C: BidirectionalCollection<UInt8>>(text: C, capacity: Int) {
        var bytes = text[...]
        if bytes.last == UInt8(ascii: "\n") { bytes = bytes.dropLast() }
        self.init(capacity: capacity)
        if bytes.isEmpty { return }
        guard bytes.count == capacity else { return nil }
        var index = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "1"): insert(index)
            case UInt8(ascii: "0"): break
            default: return nil
            }
            index += 1
        }
    }

    /// One ASCII `1` or `0` per piece, and a newline.
    public var text: [UInt8] {
        var text = [UInt8](repeating: UInt8(ascii: "0"), count: capacity + 1)
        for piece in self { text[piece] = UInt8(ascii: "1") }
        text[capacity] = UInt8(ascii: "\n")
        return text
    }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == capacity }

    @inline(__always)
    public func contains(_ piece: Int) -> Bool {
        piece >= 0 && piece < capacity && words[piece >> 6] & (1 << UInt64(piece & 63)) != 0
    }

    public subscript(piece: Int) -> Bool { contains(piece) }

    /// Adds `piece`; true when it was not in the set.
    @discardableResult
    public mutating func insert(_ piece: Int) -> Bool {
        precondition(piece >= 0 && piece < capacity, "piece \(piece) of \(capacity)")
        let bit: UInt64 = 1 << UInt64(piece & 63)
        guard words[piece >> 6] & bit == 0 else { return false }
        words[piece >> 6] |= bit
        count += 1
        return true
    }

    /// Removes `piece`; true when it was in the set.
    @discardableResult
    public mutating func remove(_ piece: Int) -> Bool {
        guard contains(piece) else { return false }
        words[piece >> 6] &= ~(1 << UInt64(piece & 63))
        count -= 1
        return true
    }
}

extension PieceSet: Sequence {
    /// The pieces in the set, ascending.
    public struct Iterator: IteratorProtocol {
        let words: [UInt64]
        var word = 0
        var bits: UInt64

        init(_ words: [UInt64]) {
            self.words = words
            bits = words.first ?? 0
        }

        public mutating func next() -> Int? {
            while bits == 0 {
                word += 1
                guard word < words.count else { return nil }
                bits = words[word]
            }
            let piece = word << 6 + bits.trailingZeroBitCount
            bits &= bits - 1
            return piece
        }
    }

    public func makeIterator() -> Iterator { Iterator(words) }
    public var underestimatedCount: Int { count }
}
