/// What a `Range` header asks of a representation of `size` bytes, read as RFC 9110 §14 says.
public enum ByteRangeRequest: Equatable, Sendable {
    /// No Range header, or one to ignore (malformed, another unit, several ranges): 200, whole.
    case whole
    /// One satisfiable range, clamped to the representation: 206.
    case partial(ClosedRange<Int64>)
    /// A well-formed range that selects nothing: 416 with `Content-Range: bytes */size`.
    case unsatisfiable

    public init(header: String?, size: Int64) {
        guard let header else { self = .whole; return }
        guard let spec = Self.parse(header) else { self = .whole; return }
        switch spec {
        case .from(let first, let last):
            guard first < size else { self = .unsatisfiable; return }
            self = .partial(first...min(last ?? (size - 1), size - 1))
        case .suffix(let length):
            guard length > 0, size > 0 else { self = .unsatisfiable; return }
            self = .partial(max(0, size - length)...(size - 1))
        }
    }

    /// One range-spec, before it meets a size.
    enum Spec: Equatable {
        case from(Int64, Int64?)
        case suffix(Int64)
    }

    /// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`. Nil for anything to be ignored: syntax errors,
    /// `b < a`, numbers past Int64, other units, and multiple ranges (a server may ignore Range;
    /// peers never ask for several).
    static func parse(_ header: String) -> Spec? {
        let text = header.trimmingASCIIWhitespace()
        guard let equals = text.firstIndex(of: "=") else { return nil }
        guard text[..<equals].lowercased() == "bytes" else { return nil }
        let set = text[text.index(after: equals)...].trimmingASCIIWhitespace()
        guard !set.contains(","), let dash = set.firstIndex(of: "-") else { return nil }
        let firstText = set[..<dash], lastText = set[set.index(after: dash)...]
        if firstText.isEmpty {
            guard let length = digits(lastText) else { return nil }
            return .suffix(length)
        }
        guard let first = digits(firstText) else { return nil }
        if lastText.isEmpty { return .from(first, nil) }
        guard let last = digits(lastText), last >= first else { return nil }
        return .from(first, last)
    }

    private static func digits(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int64(text)
    }
}

extension StringProtocol {
    /// Without the spaces and tabs at either end (HTTP's and unit files' whitespace).
    public func trimmingASCIIWhitespace() -> Substring {
        let string = Substring(self)
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let start = string.firstIndex { !isSpace($0) } ?? string.endIndex
        let end = string.lastIndex { !isSpace($0) }.map { string.index(after: $0) } ?? start
        return string[start..<end]
    }
}
