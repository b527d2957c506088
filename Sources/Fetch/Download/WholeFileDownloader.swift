import SystemPackage
import Transfer
import Wire

/// Falcon's way: one whole file from `{wgeturl}/bin_{version}`, checked against an MD5.
/// The file streams into `DEST.part` next to its destination, hashed on the way, and gets its
/// final name only after the MD5 matches and the bytes are fsynced. URLs are tried in turn, each
/// within `maxWholeFileBytes` and `wholeFileSeconds` (falcon names no size).
public struct WholeFileDownloader: Sendable {
    public var options: DownloadOptions

    public init(options: DownloadOptions = .init()) { self.options = options }

    /// The falcon URL of a version's binary (`cfg_` for the config).
    public static func falconURL(wgetURL: String, version: String, prefix: String = "bin") -> String {
        (wgetURL.hasSuffix("/") ? String(wgetURL.dropLast()) : wgetURL) + "/\(prefix)_\(version)"
    }

    /// Fetches the first URL that delivers a body with `md5` into `destination` (mode `mode`).
    /// Returns the file's SHA-256 (for the record) and size.
    public func fetch(
        urls: [String], md5: String, to destination: FilePath, mode: Int = 0o755
    ) throws(TransferError) -> (sha256: String, size: Int64) {
        var failures: [SourceFailure] = []
        let partPath = FilePath(destination.string + ".part")
        for url in urls {
            let descriptor = try Files.open(partPath, .readWrite, create: true)
            defer { try? descriptor.close() }
            let md5Hasher = Hasher(.md5), shaHasher = Hasher(.sha256)
            var request = CurlRequestOptions()
            request.connectTimeoutMs = options.connectTimeoutMs
            request.lowSpeedBytes = options.stallBytesPerSecond
            request.lowSpeedSeconds = options.stallSeconds
            request.maxRecvBytesPerSecond = options.maxBytesPerSecond
            request.totalTimeoutMs = options.wholeFileSeconds * 1000
            request.followRedirects = true
            do throws(TransferError) {
                // ftruncate: a retry after a longer, failed body must not leave its tail behind.
                _ = try? descriptor.resize(to: 0)
                let transfer = try CurlTransfer(
                    url: url, sink: .file(descriptor, offset: 0, limit: options.maxWholeFileBytes, hashers: [md5Hasher, shaHasher]),
                    options: request)
                switch transfer.perform() {
                case .completed(let status) where transfer.statusWasAccepted || (status == 200 && transfer.received == 0):
                    let got = md5Hasher.finalizeHex()
                    guard got == md5.lowercased() else {
                        failures.append(SourceFailure(source: url, reason: "md5 \(got) does not match \(md5)"))
                        continue
                    }
                    try Files.sync(descriptor, path: partPath)
                    try Files.chmod(partPath, mode: mode)
                    try Files.rename(partPath, to: destination)
                    Files.syncDirectory(destination.removingLastComponent())
                    return (shaHasher.finalizeHex(), transfer.received)
                case .completed(let status):
                    failures.append(SourceFailure(source: url, reason: "HTTP \(status)"))
                case .transportFailed(let message), .invalidResponse(let message):
                    failures.append(SourceFailure(source: url, reason: message))
                case .sinkFailed(.http(let detail)):
                    failures.append(SourceFailure(source: url, reason: "\(detail) (maxWholeFileBytes)"))
                case .sinkFailed(let error):
                    throw error
                }
            } catch {
                Files.remove(partPath)
                throw error
            }
        }
        Files.remove(partPath)
        throw .allSourcesFailed(failures)
    }
}
