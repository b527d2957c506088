import Foundation
import SystemPackage

/// A fresh directory under /tmp (or a chosen base) for one test or bench run, so nothing it
/// writes meets another run's files; removed with everything in it by `remove()`, or by `with`
/// however its body ends. World-traversable, so a server running as another user (nginx's
/// workers) can read what is put in it.
public struct TemporaryDirectory: Sendable {
    public let path: FilePath

    /// Creates `<base>/<label>-XXXXXX`; `base` defaults to /tmp.
    public init(_ label: String = "fledge-test", in base: String? = nil) throws {
        let base = base ?? "/tmp"
        var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
        let made: String? = template.withUnsafeMutableBufferPointer { buffer in
            mkdtemp(buffer.baseAddress!).map { String(cString: $0) }
        }
        guard let made else { throw HarnessError.system("cannot create a temporary directory in \(base)") }
        chmod(made, 0o755)
        path = FilePath(made)
    }

    /// Helpers over a directory that exists already; `remove()` removes it too.
    public init(existing path: FilePath) { self.path = path }

    /// Runs `body` with a fresh directory (see `init`), removed when `body` ends, however it ends.
    public static func with<T>(
        _ label: String = "fledge-test", in base: String? = nil, _ body: (TemporaryDirectory) async throws -> T
    ) async throws -> T {
        let directory = try TemporaryDirectory(label, in: base)
        defer { directory.remove() }
        return try await body(directory)
    }

    public var url: URL { URL(fileURLWithPath: path.string) }
    public var string: String { path.string }

    public func appending(_ component: String) -> FilePath { path.appending(component) }

    /// Creates subdirectory `component` (and any missing parents), world-readable; returns its path.
    @discardableResult
    public func makeDirectory(_ component: String) throws -> FilePath {
        let target = path.appending(component)
        try FileManager.default.createDirectory(
            atPath: target.string, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return target
    }

    public func remove() { try? FileManager.default.removeItem(atPath: path.string) }

    /// Writes `size` pseudo-random bytes to `name` (see `RandomFile`) and returns its path.
    @discardableResult
    public func randomFile(_ name: String, size: Int, seed: UInt64 = 1) throws -> FilePath {
        let target = path.appending(name)
        try RandomFile.write(target, size: Int64(size), seed: seed)
        return target
    }

    public func write(_ text: String, to name: String) throws -> FilePath {
        let target = path.appending(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: target.string))
        return target
    }
}
