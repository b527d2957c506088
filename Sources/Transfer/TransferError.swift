import SystemPackage
import Wire

/// Everything the data plane can refuse or fail at, each with a message a person can act on.
public enum TransferError: Error, CustomStringConvertible {
    /// A file operation failed (`what` names the file and the step).
    case fileSystem(what: String, errno: Errno)
    /// The disk filled up; nothing partial was given a final name.
    case diskFull(String)
    case crypto(String)
    case invalidKey(String)
    case manifest(ManifestError)
    /// Bytes on disk or from a source do not match the manifest.
    case hashMismatch(String)
    /// Every source failed; each is listed with why.
    case allSourcesFailed([SourceFailure])
    /// A release already exists with different content, or a path is not what it must be.
    case conflict(String)
    case http(String)
    case cancelled

    /// Wraps an error thrown by a file operation, telling a full disk apart.
    public static func io(_ what: String, errno error: any Error) -> TransferError {
        let errno = (error as? Errno) ?? .ioError
        return errno == .noSpace ? .diskFull(what) : .fileSystem(what: what, errno: errno)
    }

    public var description: String {
        switch self {
        case .fileSystem(let what, let errno): "\(what): \(errno)"
        case .diskFull(let what): "\(what): no space left on device; free space and retry (downloaded pieces are kept)"
        case .crypto(let detail): "crypto: \(detail)"
        case .invalidKey(let detail): "invalid key: \(detail)"
        case .manifest(let error): error.description
        case .hashMismatch(let detail): "hash mismatch: \(detail)"
        case .allSourcesFailed(let failures):
            "every source failed: " + failures.map { "\($0.source) (\($0.reason))" }.joined(separator: "; ")
        case .conflict(let detail): detail
        case .http(let detail): "http: \(detail)"
        case .cancelled: "cancelled"
        }
    }
}
