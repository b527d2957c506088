/// A source that a download gave up on, and why: what an agent logs, reports in its beats
/// (so HBS stops handing it out), and lists when every source failed.
public struct SourceFailure: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The source's base URL.
    public let source: String
    public let reason: String

    public init(source: String, reason: String) {
        self.source = source
        self.reason = reason
    }

    public var description: String { "\(source): \(reason)" }
}
