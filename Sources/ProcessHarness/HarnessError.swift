import Foundation

/// Why a helper could not do its job, said for a person: the benches print it as their error
/// and the tests record it, so it names the command, path or port and what went wrong.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// `what` followed by the text of the current `errno`.
    static func system(_ what: String) -> HarnessError {
        HarnessError("\(what): \(String(cString: strerror(errno)))")
    }
}
