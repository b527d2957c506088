/// A request target reduced to plain path components, or the reason it is refused.
/// No component is empty, `.`, `..`, or starts with a dot (hidden files and `.partial` stay
/// hidden); `%2e%2e` and friends are decoded before the check, NUL is refused.
public enum RequestPath: Equatable, Sendable {
    case components([String])
    case badRequest(String)
    case forbidden(String)

    public init(target: String) {
        let path = target.prefix { $0 != "?" && $0 != "#" }
        guard path.hasPrefix("/") else { self = .badRequest("request target must start with /"); return }
        guard let decoded = Self.percentDecoded(path) else { self = .badRequest("bad percent-encoding"); return }
        guard !decoded.contains(0) else { self = .badRequest("NUL in path"); return }
        var components: [String] = []
        for part in decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let component = String(decoding: part, as: UTF8.self)
            if component.hasPrefix(".") {
                self = .forbidden(component == ".." || component == "." ? "path escapes its root" : "hidden path")
                return
            }
            components.append(component)
        }
        self = .components(components)
    }

    private static func percentDecoded(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }
}
