import Foundation
import SystemPackage
import Wire

/// Test payloads: incompressible pseudo-random bytes, the same for the same seed on every run
/// (so a failure can be replayed), written in chunks so a bench's 256 MiB file never sits in
/// memory whole. World-readable, for servers running as another user.
public enum RandomFile {
    /// Writes `size` bytes from `SplitMix64(seed:)` to `path` (created or truncated; or, when
    /// `appending`, added after what it holds): each 64-bit output as 8 little-endian bytes,
    /// the last one cut short.
    public static func write(_ path: FilePath, size: Int64, seed: UInt64 = 1, appending: Bool = false) throws {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                path, .writeOnly, options: appending ? [.create, .append] : [.create, .truncate],
                permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw HarnessError("cannot create \(path): \(error)")
        }
        defer { try? fd.close() }
        var generator = SplitMix64(seed: seed)
        let chunk = 4 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        var written: Int64 = 0
        while written < size {
            let count = Int(min(Int64(chunk), size - written))
            buffer.withUnsafeMutableBytes { bytes in
                for word in 0..<(count + 7) / 8 {
                    bytes.storeBytes(of: generator.next().littleEndian, toByteOffset: word * 8, as: UInt64.self)
                }
            }
            do {
                _ = try buffer.withUnsafeBytes { try fd.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            } catch {
                throw HarnessError("cannot write \(path): \(error)")
            }
            written += Int64(count)
        }
        if !appending { fchmod(fd.rawValue, 0o644) }  // whatever the umask; an appended file keeps its mode
    }
}
