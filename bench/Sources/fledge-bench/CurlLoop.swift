import Foundation

/// One peer pulling a file over and over: `curl -s -o /dev/null URL`, one at a time, back to
/// back, until a number of seconds have passed (the download running then is finished).
enum CurlLoop {
    struct Result {
        var downloads: Int
        var bytes: Int64
        var seconds: Double
        var megabytesPerSecond: Double { Bench.megabytesPerSecond(bytes: bytes, seconds: seconds) }
    }

    /// Each download must be HTTP 200 with `size` bytes.
    static func run(url: String, size: Int64, seconds: Int) async throws -> Result {
        let start = ContinuousClock.now, deadline = start + .seconds(seconds)
        var downloads = 0
        while ContinuousClock.now < deadline {
            _ = try await CurlClients.download(url: url, clients: 1, expectedSize: size) { _ in "/dev/null" }
            downloads += 1
        }
        return Result(downloads: downloads, bytes: Int64(downloads) * size, seconds: (ContinuousClock.now - start).seconds)
    }
}
