import ArgumentParser
import Fetch
import Foundation
import ProcessHarness
import Seeder
import SystemPackage
import Transfer
import Wire

/// `fledge-bench fetch`: our release downloader vs the curl command line, both pulling the same
/// file from nginx.
struct FetchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Our downloader (PieceStore + ReleaseDownloader) vs `curl -o FILE`, pulling the same file from nginx.",
        discussion: """
            The file is published with Publisher (a fresh Ed25519 key) into an nginx root, once per \
            piece size. Ours downloads the release into a fresh PieceStore each run, for every \
            combination of piece size and pieces in flight; the timing covers opening the \
            assembly through the end of ReleaseDownloader.run() (per-piece SHA-256 while \
            streaming, writeback started as each piece verifies, then fsync, rename, manifest). \
            curl just writes the body to a file. ratio_vs_curl uses ours' best configuration.
            """)

    @OptionGroup var common: CommonOptions

    @Option(name: .customLong("in-flight"), help: "DownloadOptions.maxInFlight values to try (also maxPerSource); repeat the option.")
    var inFlight: [Int] = [2, 4, 8]

    @Option(name: .customLong("piece-size"), help: "Piece sizes in bytes to try besides Publisher's default; repeat the option.")
    var pieceSizes: [Int64] = [4 << 20]

    func validate() throws {
        if inFlight.isEmpty || inFlight.contains(where: { $0 <= 0 }) { throw ValidationError("--in-flight must be positive") }
        if pieceSizes.contains(where: { $0 <= 0 }) { throw ValidationError("--piece-size must be positive") }
    }

    /// One downloader configuration.
    private struct Config: Hashable {
        var pieceSize: Int64
        var inFlight: Int
        var isDefaultPieceSize: Bool

        var name: String { "piece=\(Format.size(pieceSize).replacingOccurrences(of: " ", with: "")),in_flight=\(inFlight)" }
    }

    private struct Results {
        var curl = Samples()  // MB/s
        var curlFsync = Samples()  // MB/s, curl's time plus an fsync of its file
        var curlFsyncHash = Samples()  // MB/s, plus a SHA-256 pass over the file as well
        var ours: [Config: Samples] = [:]
    }

    func run() async throws {
        try await Bench.run { try await measureAndReport() }
    }

    private func measureAndReport() async throws {
        let size = common.sizeBytes
        let defaultPiece = Publisher.defaultPieceSize(largestFile: size)
        var seen = Set<Int64>()
        let pieces = ([defaultPiece] + pieceSizes).filter { seen.insert($0).inserted }
        let configs = pieces.flatMap { piece in
            inFlight.map { Config(pieceSize: piece, inFlight: $0, isDefaultPieceSize: piece == defaultPiece) }
        }

        let results = try await Cleanup.shared.withTemporaryDirectory(in: common.workdir, label: "fledge-bench-fetch") { directory in
            let source = try directory.makeDirectory("src")
            let file = source.appending("payload.bin")
            Bench.progress("writing \(Format.size(size)) of random bytes to \(file)")
            try RandomFile.write(file, size: size)

            let www = try directory.makeDirectory("www")
            let publisher = Publisher(root: www, key: try Ed25519PrivateKey.generate())
            var manifests: [Int64: Manifest] = [:]
            for piece in pieces {
                Bench.progress("publishing with \(Format.size(piece)) pieces")
                manifests[piece] = try publisher.publish(
                    Publisher.Input(name: "bench", version: "piece-\(piece)", binary: file, pieceSize: piece))
            }
            return try await Nginx.with(root: www, prefix: directory.appending("nginx")) { nginx in
                try await measure(
                    configs: configs, manifests: manifests, nginx: nginx, size: size, directory: directory.path)
            }
        }
        report(results, configs: configs, size: size)
    }

    private func measure(
        configs: [Config], manifests: [Int64: Manifest], nginx: Nginx, size: Int64, directory: FilePath
    ) async throws -> Results {
        let curlURL = { (piece: Int64) in "\(nginx.baseURL)/bench/piece-\(piece)/payload.bin" }
        for piece in manifests.keys {
            Bench.progress("warming up nginx: \(curlURL(piece))")
            _ = try await CurlClients.download(url: curlURL(piece), clients: 1, expectedSize: size, output: { _ in "/dev/null" })
        }
        var results = Results()
        let curlPiece = configs[0].pieceSize
        for run in 0..<common.repeats {
            let curlFirst = run % 2 == 0
            if curlFirst { try await measureCurl(url: curlURL(curlPiece), size: size, directory: directory, into: &results) }
            for config in configs {
                guard let manifest = manifests[config.pieceSize] else { continue }
                let store = directory.appending("store-\(run)-\(config.pieceSize)-\(config.inFlight)")
                var options = DownloadOptions()
                options.policy.maxInFlight = config.inFlight
                options.policy.maxPerSource = config.inFlight
                let seconds = try await Bench.seconds {
                    let pieceStore = try PieceStore(root: store)
                    let assembly = try pieceStore.assembly(for: manifest)
                    let report = try await ReleaseDownloader(assembly: assembly, sources: [nginx.baseURL], options: options).download()
                    guard report.fetchedBytes == size, assembly.isComplete else {
                        throw BenchError.check("download of \(config.name) fetched \(report.fetchedBytes) of \(size) bytes")
                    }
                }
                let finalFile = store.appending("bench").appending("piece-\(config.pieceSize)").appending("payload.bin")
                guard Files.regularFileSize(finalFile) == size else {
                    throw BenchError.check("\(finalFile) is missing or the wrong size after the download")
                }
                try? FileManager.default.removeItem(atPath: store.string)
                let throughput = Bench.megabytesPerSecond(bytes: size, seconds: seconds)
                results.ours[config, default: Samples()].add(throughput)
                Bench.progress("run \(run + 1)/\(common.repeats): fledge \(config.name): \(Format.fixed(throughput)) MB/s")
            }
            if !curlFirst { try await measureCurl(url: curlURL(curlPiece), size: size, directory: directory, into: &results) }
        }
        return results
    }

    /// One `curl -s -o FILE URL`; then, for the other references, an fsync of FILE and a
    /// SHA-256 pass over it (from the page cache), timed apart.
    private func measureCurl(url: String, size: Int64, directory: FilePath, into results: inout Results) async throws {
        let output = directory.appending("curl-payload.bin")
        let seconds = try await CurlClients.download(
            url: url, clients: 1, expectedSize: size, output: { _ in output.string })
        let fsyncSeconds = try await Bench.seconds {
            let fd = try FileDescriptor.open(output, .readOnly)
            defer { try? fd.close() }
            if fsync(fd.rawValue) != 0 { throw BenchError.io("fsync \(output): \(String(cString: strerror(errno)))") }
        }
        let hashSeconds = try await Bench.seconds {
            let fd = try FileDescriptor.open(output, .readOnly)
            defer { try? fd.close() }
            let hasher = Hasher(.sha256)
            guard try Hasher.feed([hasher], from: fd) == size else { throw BenchError.check("\(output) is not \(size) bytes") }
            _ = hasher.finalize()
        }
        unlink(output.string)
        let throughput = Bench.megabytesPerSecond(bytes: size, seconds: seconds)
        results.curl.add(throughput)
        results.curlFsync.add(Bench.megabytesPerSecond(bytes: size, seconds: seconds + fsyncSeconds))
        results.curlFsyncHash.add(Bench.megabytesPerSecond(bytes: size, seconds: seconds + fsyncSeconds + hashSeconds))
        Bench.progress("curl: \(Format.fixed(throughput)) MB/s (with fsync: \(Format.fixed(results.curlFsync.values.last ?? 0)) MB/s)")
    }

    private func report(_ results: Results, configs: [Config], size: Int64) {
        var table = Table(
            "fetch: one \(Format.size(size)) file from nginx over 127.0.0.1, best and median of \(common.repeats) run(s)",
            columns: [("client", .left), ("piece", .right), ("in flight", .right), ("best MB/s", .right),
                      ("median MB/s", .right), ("vs curl (best)", .right)])
        let curlBest = results.curl.best
        table.add(["curl -o FILE", "-", "1", Format.fixed(curlBest), Format.fixed(results.curl.median), "1.000"])
        table.add(["curl -o FILE + fsync", "-", "1", Format.fixed(results.curlFsync.best), Format.fixed(results.curlFsync.median),
                   Format.ratio(results.curlFsync.best / curlBest)])
        table.add(["curl -o FILE + fsync + SHA-256", "-", "1", Format.fixed(results.curlFsyncHash.best),
                   Format.fixed(results.curlFsyncHash.median), Format.ratio(results.curlFsyncHash.best / curlBest)])
        var best: (config: Config, samples: Samples)?
        for config in configs {
            let samples = results.ours[config] ?? Samples()
            let piece = Format.size(config.pieceSize) + (config.isDefaultPieceSize ? " (default)" : "")
            table.add(["fledge ReleaseDownloader", piece, "\(config.inFlight)", Format.fixed(samples.best),
                       Format.fixed(samples.median), Format.ratio(samples.best / curlBest)])
            if best == nil || samples.best > best!.samples.best { best = (config, samples) }
        }
        let ours = best?.samples ?? Samples()
        table.note("MB/s = 10^6 bytes per second; 'in flight' is DownloadOptions.maxInFlight (maxPerSource set to the same; one source).")
        table.note("fledge verifies the SHA-256 of every piece as it streams and starts its writeback at once, then fsyncs the file and renames it into place (no second whole-file hash).")
        table.note("curl does no verification and no fsync. For comparison only, '+ fsync' adds an fsync of curl's file, '+ SHA-256' also one SHA-256 pass over it (Hasher.feed, page cache): roughly the extra work ours does.")
        table.note("ratio_vs_curl = best fledge configuration (\(best?.config.name ?? "-")) / curl, best runs.")
        table.print()

        var json = JSONLine(bench: "fetch")
        json.add("size_mib", common.sizeMiB)
        json.add("repeat", common.repeats)
        json.add("statistic", "best")
        json.add("ratio_vs_curl", ours.best / curlBest)
        json.add("best_config", best?.config.name ?? "")
        json.add("ratio_vs_curl_fsync", ours.best / results.curlFsync.best)
        json.add("ratio_vs_curl_fsync_sha256", ours.best / results.curlFsyncHash.best)
        json.add("ratio_vs_curl_median", ours.median / results.curl.median)
        json.add("fledge_mbps", ours.best, digits: 1)
        json.add("curl_mbps", curlBest, digits: 1)
        json.add("curl_fsync_mbps", results.curlFsync.best, digits: 1)
        json.add("curl_fsync_sha256_mbps", results.curlFsyncHash.best, digits: 1)
        print(json.text)
    }
}
