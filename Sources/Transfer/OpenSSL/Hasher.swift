#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Wire
import COpenSSL
import SystemPackage

/// The digests Fledge uses: SHA-256 for everything it trusts, MD5 only for falcon releases.
public enum DigestAlgorithm: Sendable {
    case sha256, md5

    /// The algorithm fetched from OpenSSL's default provider once per process: OpenSSL 3
    /// otherwise fetches it again (a lookup under a lock) on every digest it starts, which
    /// costs more than hashing a heartbeat's secret.
    fileprivate var evp: OpaquePointer {
        switch self {
        case .sha256: Self.fetchedSHA256.pointer
        case .md5: Self.fetchedMD5.pointer
        }
    }

    private static let fetchedSHA256 = FetchedDigest("SHA256", fallback: EVP_sha256())
    private static let fetchedMD5 = FetchedDigest("MD5", fallback: EVP_md5())
}

/// An `EVP_MD` fetched once and kept for the life of the process (never freed: it is shared
/// by every hasher, and OpenSSL's digests are immutable and thread-safe once fetched).
private final class FetchedDigest: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ name: String, fallback: OpaquePointer?) {
        // Without a provider that has it (FIPS-only OpenSSL and MD5) the legacy constant still
        // names it; EVP then reports the failure where it is used.
        guard let fetched = EVP_MD_fetch(nil, name, nil) ?? fallback else { fatalError("OpenSSL has no \(name)") }
        pointer = fetched
    }
}

/// A streaming digest on OpenSSL's EVP interface (SHA-NI where the CPU has it).
/// Not thread-safe: one hasher per stream.
public final class Hasher {
    private let context: OpaquePointer
    public let algorithm: DigestAlgorithm

    public init(_ algorithm: DigestAlgorithm) {
        self.algorithm = algorithm
        // Allocation failure here means the process is out of memory; nothing sensible follows.
        guard let context = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        self.context = context
        EVP_DigestInit_ex(context, algorithm.evp, nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: some ContiguousBytes) {
        bytes.withUnsafeBytes { update(rawBuffer: $0) }
    }

    /// For the other C wrappers (Fetch's curl body sink), which hold raw buffers; nothing else.
    public func update(rawBuffer: UnsafeRawBufferPointer) {
        guard let base = rawBuffer.baseAddress, !rawBuffer.isEmpty else { return }
        EVP_DigestUpdate(context, base, rawBuffer.count)
    }

    /// Ends the stream and returns the digest; the hasher starts over afterwards.
    public func finalize() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &out, &length)
        EVP_DigestInit_ex(context, algorithm.evp, nil)
        return Array(out.prefix(Int(length)))
    }

    public func finalizeHex() -> String { Hex.encode(finalize()) }

    /// Feeds `length` bytes of an open file from `offset` (the whole rest when nil) through
    /// the given hashers in one pass, reading in `chunk`-sized blocks. Returns bytes read.
    @discardableResult
    public static func feed(
        _ hashers: [Hasher], from fd: FileDescriptor, offset: Int64 = 0, length: Int64? = nil,
        chunk: Int = 1 << 20
    ) throws(TransferError) -> Int64 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        var position = offset
        var remaining = length ?? Int64.max
        while remaining > 0 {
            let want = Int(min(Int64(chunk), remaining))
            let got: Int
            do {
                got = try fd.read(fromAbsoluteOffset: position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
            } catch {
                throw .io("reading at offset \(position)", errno: error)
            }
            if got == 0 { break }
            let view = UnsafeRawBufferPointer(rebasing: buffer[0..<got])
            for hasher in hashers { hasher.update(rawBuffer: view) }
            position += Int64(got)
            remaining -= Int64(got)
        }
        return position - offset
    }
}

/// One-shot digests.
public enum Digest {
    public static func sha256(_ bytes: some ContiguousBytes) -> [UInt8] { oneShot(.sha256, bytes) }

    public static func md5(_ bytes: some ContiguousBytes) -> [UInt8] { oneShot(.md5, bytes) }

    /// One `EVP_Digest` call: no hasher object, no re-initialised context afterwards.
    private static func oneShot(_ algorithm: DigestAlgorithm, _ bytes: some ContiguousBytes) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        bytes.withUnsafeBytes { raw in
            _ = EVP_Digest(raw.baseAddress, raw.count, &out, &length, algorithm.evp, nil)
        }
        out.removeLast(out.count - Int(length))
        return out
    }

    /// SHA-256 and MD5 of a whole file, read once.
    public static func file(at path: FilePath) throws(TransferError) -> (sha256: String, md5: String, size: Int64) {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, .readOnly) } catch { throw .io("opening \(path)", errno: error) }
        defer { try? fd.close() }
        let sha = Hasher(.sha256), md5 = Hasher(.md5)
        let size = try Hasher.feed([sha, md5], from: fd)
        return (sha.finalizeHex(), md5.finalizeHex(), size)
    }
}
