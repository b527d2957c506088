import Glibc
import SystemPackage
import Transfer

/// Where an agent keeps its releases, and the one way it switches between them:
///
///     DATA/releases/VERSION/fledge-agent           the binary (and .json config, .service unit)
///     DATA/current  -> releases/VERSION            what the supervisor starts
///     DATA/previous -> releases/VERSION            what a rollback returns to
///     DATA/pending                                 the release on trial: switched to, not committed
///     DATA/pending.attempts                        starts of it so far (the guard counts them)
///     DATA/pending.ready                           it got ready (HBS answered it) at this time
///     DATA/pending.failed                          it found itself unhealthy (its probe), and why
///     DATA/undo/NAME.path, NAME.old                files outside DATA the install replaced
///     DATA/rollback                                written by the guard when it switched back
///     DATA/starts                                  starts of the running version (reported)
///
/// `scripts/fledge-guard` (the unit's pre-start step) reads the same layout without this binary,
/// and is the one place a trial ends in a rollback.
public struct ReleaseLayout: Sendable {
    public static let binaryName = "fledge-agent"
    public static let configName = "fledge-agent.json"
    public static let unitName = "fledge-agent.service"

    public let data: FilePath

    public init(data: FilePath) { self.data = data }

    public var releases: FilePath { data.appending("releases") }
    public var current: FilePath { data.appending("current") }
    public var previous: FilePath { data.appending("previous") }
    public var pending: FilePath { data.appending("pending") }
    public var attempts: FilePath { data.appending("pending.attempts") }
    public var ready: FilePath { data.appending("pending.ready") }
    public var failed: FilePath { data.appending("pending.failed") }
    public var undo: FilePath { data.appending("undo") }
    public var rollback: FilePath { data.appending("rollback") }
    public var starts: FilePath { data.appending("starts") }
    /// What a trial leaves besides `pending` and `undo` (scripts/fledge-guard clears the same).
    var trialMarkers: [FilePath] { [attempts, ready, failed] }
    public var store: FilePath { data.appending("store") }

    public func release(_ version: String) -> FilePath { releases.appending(version) }


    /// The release directory a link points at, if any.
    public func target(of link: FilePath) -> FilePath? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(link.string, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.hasPrefix("/") ? FilePath(text) : data.appending(text)
    }

    /// Points `link` at `target` atomically: a new link under a temporary name, then rename.
    public func point(_ link: FilePath, at target: FilePath) throws(TransferError) {
        let temporary = FilePath(link.string + ".tmp")
        unlink(temporary.string)
        guard symlink(target.string, temporary.string) == 0 else {
            throw .io("linking \(temporary) to \(target)", errno: Errno(rawValue: errno))
        }
        try Files.rename(temporary, to: link)
        Files.syncDirectory(data)
    }
}
