import Foundation
import SystemPackage

/// A fresh directory under /tmp, removed with everything in it by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: FilePath

    public init(_ label: String = "fledge-test") throws {
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = FilePath(String(cString: made))
    }

    /// Helpers over a directory that exists already; `remove()` removes it too.
    public init(existing path: FilePath) { self.path = path }

    public var url: URL { URL(fileURLWithPath: path.string) }
    public var string: String { path.string }

    public func appending(_ component: String) -> FilePath { path.appending(component) }

    public func remove() { try? FileManager.default.removeItem(atPath: path.string) }

    /// Writes `size` pseudo-random bytes to `name` and returns its path.
    @discardableResult
    public func randomFile(_ name: String, size: Int, seed: UInt64 = 1) throws -> FilePath {
        var generator = SplitMix64(seed: seed)
        var bytes = [UInt8](repeating: 0, count: size)
        var i = 0
        while i < size {
            var word = generator.next()
            for _ in 0..<8 where i < size {
                bytes[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        let target = path.appending(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target.string))
        return target
    }

    public func write(_ text: String, to name: String) throws -> FilePath {
        let target = path.appending(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: target.string))
        return target
    }
}

/// A tiny deterministic generator, so test files are the same on every run.
public struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
