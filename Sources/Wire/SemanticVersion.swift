/// A release version ordered as versions are, not as strings: `1.10.0 > 1.9.0`, and a
/// pre-release sorts before its release (`2.0.0-rc.1 < 2.0.0`), as semver 2.0 says. Versions
/// that are not strict semver (falcon's `6.0.1.2`) compare by their dot-separated parts, numbers
/// as numbers. Build metadata (`+...`) never affects order.
public struct SemanticVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    public let text: String
    private let release: [Identifier]
    private let prerelease: [Identifier]

    /// One dot-separated part: numbers compare as numbers and sort before words.
    enum Identifier: Comparable, Hashable, Sendable {
        case number(UInt64)
        case word(String)

        init(_ part: Substring) {
            if let value = UInt64(part), part.allSatisfy(\.isASCII) { self = .number(value) } else { self = .word(String(part)) }
        }

        static func < (a: Identifier, b: Identifier) -> Bool {
            switch (a, b) {
            case (.number(let x), .number(let y)): x < y
            case (.number, .word): true
            case (.word, .number): false
            case (.word(let x), .word(let y)): x < y
            }
        }
    }

    /// Nil for text that is no version at all (empty, or an empty part such as `1..2`).
    public init?(_ text: String) {
        var core = Substring(text)
        if let plus = core.firstIndex(of: "+") { core = core[..<plus] }
        var pre: Substring = ""
        if let dash = core.firstIndex(of: "-") {
            pre = core[core.index(after: dash)...]
            core = core[..<dash]
            guard !pre.isEmpty else { return nil }
        }
        let parts = core.split(separator: ".", omittingEmptySubsequences: false)
        guard !core.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        let preParts = pre.isEmpty ? [] : pre.split(separator: ".", omittingEmptySubsequences: false)
        guard preParts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.text = text
        self.release = parts.map(Identifier.init)
        self.prerelease = preParts.map(Identifier.init)
    }

    public var description: String { text }

    public static func < (a: SemanticVersion, b: SemanticVersion) -> Bool {
        // Missing trailing release parts count as zero: 1.2 == 1.2.0.
        let count = max(a.release.count, b.release.count)
        for i in 0..<count {
            let x = i < a.release.count ? a.release[i] : .number(0)
            let y = i < b.release.count ? b.release[i] : .number(0)
            if x != y { return x < y }
        }
        // A release sorts after every pre-release of it.
        if a.prerelease.isEmpty { return false }
        if b.prerelease.isEmpty { return true }
        return a.prerelease.lexicographicallyPrecedes(b.prerelease)
    }

    public static func == (a: SemanticVersion, b: SemanticVersion) -> Bool { !(a < b) && !(b < a) }

    public func hash(into hasher: inout Swift.Hasher) {
        var release = self.release
        while release.count > 1, release.last == .number(0) { release.removeLast() }
        hasher.combine(release)
        hasher.combine(prerelease)
    }
}
