import ArgumentParser
import Foundation
import ProcessHarness
import SystemPackage
import Transfer

/// `fledge-bench hash`: our file hashing vs `openssl speed`.
struct HashBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Our SHA-256 file verification (Hasher.feed over a warm file) vs `openssl speed -evp sha256 -bytes 16384`.",
        discussion: """
            Ours opens the file with FileDescriptor.open and feeds it through Hasher(.sha256) with \
            Hasher.feed (1 MiB preads), the file already in the page cache; openssl hashes 16 KiB \
            blocks in memory, no I/O. MD5, a pure read pass and Digest.file(at:) (SHA-256 + MD5 \
            in one pass) are shown for information.
            """)

    @OptionGroup var common: CommonOptions

    @Option(help: "Seconds for each `openssl speed` run.")
    var opensslSeconds: Int = 3

    func validate() throws {
        if opensslSeconds <= 0 { throw ValidationError("--openssl-seconds must be positive") }
    }

    func run() async throws {
        try await Bench.run { try await measureAndReport() }
    }

    private func measureAndReport() async throws {
        let size = common.sizeBytes
        try await Cleanup.shared.withTemporaryDirectory(in: common.workdir, label: "fledge-bench-hash") { directory in
            let file = directory.appending("payload.bin")
            Bench.progress("writing \(Format.size(size)) of random bytes to \(file)")
            try RandomFile.write(file, size: size)

            Bench.progress("reading it once, so it is in the page cache")
            _ = try pass(file, [])
            var read = Samples(), sha256 = Samples(), md5 = Samples(), both = Samples()
            var smallChunks: [Int: Samples] = [:]
            for run in 0..<common.repeats {
                read.add(try pass(file, []))
                sha256.add(try pass(file, [.sha256]))
                for chunk in Self.smallChunks { smallChunks[chunk, default: Samples()].add(try pass(file, [.sha256], chunk: chunk)) }
                md5.add(try pass(file, [.md5]))
                let seconds = try await Bench.seconds { _ = try Digest.file(at: file) }
                both.add(Bench.megabytesPerSecond(bytes: size, seconds: seconds))
                Bench.progress("run \(run + 1)/\(common.repeats): sha256 \(Format.fixed(sha256.values.last!)) MB/s, md5 \(Format.fixed(md5.values.last!)) MB/s")
            }
            Bench.progress("openssl speed -evp sha256 (\(opensslSeconds) s)")
            let opensslSHA256 = try await openssl("sha256")
            Bench.progress("openssl speed -evp md5 (\(opensslSeconds) s)")
            let opensslMD5 = try await openssl("md5")

            var table = Table(
                "hash: one \(Format.size(size)) file in the page cache, best and median of \(common.repeats) run(s)",
                columns: [("what", .left), ("best MB/s", .right), ("median MB/s", .right), ("vs openssl", .right)])
            table.add(["fledge SHA-256 (Hasher.feed)", Format.fixed(sha256.best), Format.fixed(sha256.median),
                       Format.ratio(sha256.best / opensslSHA256)])
            table.add(["openssl speed -evp sha256 16 KiB", Format.fixed(opensslSHA256), "-", "1.000"])
            table.add(["fledge MD5 (Hasher.feed)", Format.fixed(md5.best), Format.fixed(md5.median),
                       Format.ratio(md5.best / opensslMD5)])
            table.add(["openssl speed -evp md5 16 KiB", Format.fixed(opensslMD5), "-", "1.000"])
            for chunk in Self.smallChunks {
                let samples = smallChunks[chunk] ?? Samples()
                table.add(["fledge SHA-256, \(Format.size(Int64(chunk))) preads", Format.fixed(samples.best), Format.fixed(samples.median),
                           Format.ratio(samples.best / opensslSHA256)])
            }
            table.add(["fledge SHA-256+MD5 (Digest.file)", Format.fixed(both.best), Format.fixed(both.median), "-"])
            table.add(["read only (Hasher.feed, no hasher)", Format.fixed(read.best), Format.fixed(read.median), "-"])
            table.note("MB/s = 10^6 bytes per second. openssl's figure is its 16384-byte column (kB/s, 1k = 1000 bytes), one run.")
            table.note("Ours includes reading the file (pread, 1 MiB blocks, from the page cache); openssl hashes a buffer in memory.")
            table.note("ratio_vs_openssl = fledge SHA-256 best / openssl sha256, with Hasher.feed's default 1 MiB preads; smaller preads are for information.")
            table.print()

            var json = JSONLine(bench: "hash")
            json.add("size_mib", common.sizeMiB)
            json.add("repeat", common.repeats)
            json.add("statistic", "best")
            json.add("ratio_vs_openssl", sha256.best / opensslSHA256)
            json.add("ratio_vs_openssl_md5", md5.best / opensslMD5)
            json.add("sha256_mbps", sha256.best, digits: 1)
            json.add("openssl_sha256_mbps", opensslSHA256, digits: 1)
            json.add("md5_mbps", md5.best, digits: 1)
            json.add("openssl_md5_mbps", opensslMD5, digits: 1)
            json.add("sha256_md5_one_pass_mbps", both.best, digits: 1)
            json.add("read_only_mbps", read.best, digits: 1)
            print(json.text)
        }
    }

    /// Read sizes tried besides Hasher.feed's default, for information: smaller ones stay in cache.
    private static let smallChunks = [64 << 10, 256 << 10]

    /// One pass over the file through fresh hashers of these algorithms (Hasher.feed's default
    /// read size unless `chunk` is given); MB/s.
    private func pass(_ path: FilePath, _ algorithms: [DigestAlgorithm], chunk: Int? = nil) throws -> Double {
        let fd = try FileDescriptor.open(path, .readOnly)
        defer { try? fd.close() }
        let hashers = algorithms.map { Hasher($0) }
        let start = ContinuousClock.now
        let bytes = try chunk.map { try Hasher.feed(hashers, from: fd, chunk: $0) } ?? Hasher.feed(hashers, from: fd)
        for hasher in hashers { _ = hasher.finalize() }
        let seconds = (ContinuousClock.now - start).seconds
        guard bytes == common.sizeBytes else { throw BenchError.check("read \(bytes) of \(common.sizeBytes) bytes of \(path)") }
        return Bench.megabytesPerSecond(bytes: bytes, seconds: seconds)
    }

    /// `openssl speed -evp ALGORITHM -bytes 16384 -seconds N`: the last line's figure, MB/s.
    private func openssl(_ algorithm: String) async throws -> Double {
        let (output, _) = try await ChildProcess.run(
            try Binaries.tool("openssl"), ["speed", "-evp", algorithm, "-bytes", "16384", "-seconds", "\(opensslSeconds)"])
        let lastLine = output.split(whereSeparator: \.isNewline).last { !$0.allSatisfy(\.isWhitespace) } ?? ""
        guard let field = lastLine.split(separator: " ").last, field.hasSuffix("k"), let kilobytes = Double(field.dropLast()) else {
            throw BenchError.tool("cannot read openssl speed's last line: '\(lastLine)'")
        }
        return kilobytes * 1000 / 1e6
    }
}
