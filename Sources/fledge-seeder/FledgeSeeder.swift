import ArgumentParser
import Fetch
import Foundation
import Logging
import Seeder
import SystemPackage
import Transfer
import Wire

/// `fledge-seeder`: make release keys, publish signed releases, serve them as an origin, and
/// mirror them from other origins.
@main
struct FledgeSeeder: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fledge-seeder",
        abstract: "Publish signed Fledge releases and serve them as an origin.",
        discussion: "Exit status: 0 done, 1 failed (the message says why), 64 bad arguments.",
        subcommands: [Keygen.self, Publish.self, Resign.self, Serve.self, Mirror.self, Stamp.self])
}

/// Prints an error the way every subcommand does and exits 1.
func fail(_ message: Any) -> ExitCode {
    FileHandle.standardError.write(Data("fledge-seeder: error: \(message)\n".utf8))
    return ExitCode.failure
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an Ed25519 release key pair (release.key 0600, release.pub).")

    @Option(help: "Directory to write the key pair into.") var out: String

    func run() throws {
        do {
            let publicKey = try ReleaseKeys.generate(into: FilePath(out))
            printJSON(["keyId": publicKey.keyID, "privateKey": "\(out)/\(ReleaseKeys.privateKeyName)",
                       "publicKey": "\(out)/\(ReleaseKeys.publicKeyName)"])
        } catch { throw fail(error) }
    }
}

struct Stamp: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a fledge-agent binary so that it reports another version (no rebuild per version).")

    @Option(help: "The fledge-agent binary to copy.") var binary: String
    @Option(help: "The version the copy reports.") var version: String
    @Option(help: "Where to write the copy (mode 0755).") var out: String

    func run() throws {
        do { try VersionStamp.stamp(binary: FilePath(binary), version: version, output: FilePath(out)) } catch { throw fail(error) }
        printJSON(["binary": out, "version": version])
    }
}

struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hash, sign and lay out a release under ROOT (Fledge and falcon layouts); print a JSON summary.")

    @Option(help: "Origin root directory.") var root: String
    @Option(help: "Release name, e.g. fledge-agent.") var name: String
    @Option(help: "Release version, e.g. 1.1.0.") var version: String
    @Option(help: "The executable.") var binary: String
    @Option(help: "Its config file.") var config: String?
    @Option(help: "Its systemd unit file.") var unit: String?
    @Option(help: "Signing key (PEM), from keygen; repeat to sign with several (the first is the primary).")
    var key: [String]
    @Option(help: "Piece size in bytes (default: about 128 pieces for the largest file, 64 KiB-4 MiB).")
    var pieceSize: Int64?
    @Option(help: "Days the manifest stays valid.") var validDays: Int64 = 90
    @Option(help: "The oldest version a host may install once it confirmed this one (signed; rollback floor).")
    var minimumVersion: String?

    func validate() throws {
        if let pieceSize, pieceSize <= 0 { throw ValidationError("--piece-size must be positive") }
        if validDays <= 0 { throw ValidationError("--valid-days must be positive") }
        if key.isEmpty { throw ValidationError("give at least one --key") }
    }

    func run() throws {
        do {
            let keys = try key.map { path throws(TransferError) in try ReleaseKeys.loadPrivate(FilePath(path)) }
            var input = Publisher.Input(
                name: name, version: version, binary: FilePath(binary), config: config.map { FilePath($0) },
                unit: unit.map { FilePath($0) }, pieceSize: pieceSize)
            input.validSeconds = validDays * 24 * 3600
            input.minimumVersion = minimumVersion
            let manifest = try Publisher(root: FilePath(root), keys: keys).publish(input)
            printJSON(PublishSummary(manifest, root: root))
        } catch { throw fail(error) }
    }
}

struct Resign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Give a published release a new validity and new signatures, its bytes unchanged (expired releases, key rotation).")

    @Option(help: "Origin root directory.") var root: String
    @Option(help: "Release name.") var name: String
    @Option(help: "Release version.") var version: String
    @Option(help: "Signing key (PEM); repeat to sign with several (the first is the primary).") var key: [String]
    @Option(help: "Days the manifest stays valid from now.") var validDays: Int64 = 90

    func validate() throws {
        if validDays <= 0 { throw ValidationError("--valid-days must be positive") }
        if key.isEmpty { throw ValidationError("give at least one --key") }
    }

    func run() throws {
        do {
            let keys = try key.map { path throws(TransferError) in try ReleaseKeys.loadPrivate(FilePath(path)) }
            let manifest = try Publisher(root: FilePath(root), keys: keys).resign(name: name, version: version, validSeconds: validDays * 24 * 3600)
            printJSON(PublishSummary(manifest, root: root))
        } catch { throw fail(error) }
    }
}

struct PublishSummary: Encodable {
    struct File: Encodable {
        var role: String, name: String, size: Int64, sha256: String, md5: String, pieces: Int
    }
    var name: String, version: String, keyId: String, pieceSize: Int64, pieces: Int, totalSize: Int64
    var manifest: String
    var files: [File]

    init(_ manifest: Manifest, root: String) {
        name = manifest.name
        version = manifest.version
        keyId = manifest.keyId
        pieceSize = manifest.pieceSize
        pieces = manifest.totalPieces
        totalSize = manifest.totalSize
        self.manifest = "\(root)/\(manifest.name)/\(manifest.version)/manifest.json"
        files = manifest.files.map {
            File(role: $0.role.rawValue, name: $0.name, size: $0.size, sha256: $0.sha256, md5: $0.md5, pieces: $0.pieces.count)
        }
    }
}

extension ListenAddress: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve ROOT over HTTP with byte ranges (GET, HEAD), logging each request.")

    @Option(help: "Directory to serve.") var root: String
    @Option(help: "HOST:PORT to listen on.") var listen: ListenAddress
    @Option(help: "Total upload cap in bytes per second.") var rate: Int64?
    @Option(help: "Concurrent connections; more get 503.") var maxConns: Int = 1024
    @Option(help: "Event loop threads (default: one per core).") var threads: Int?

    func validate() throws {
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        if maxConns <= 0 { throw ValidationError("--max-conns must be positive") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "fledge-seeder")
        let catalog: DirectoryCatalog
        do { catalog = try DirectoryCatalog(root: FilePath(root)) } catch { throw fail(error) }
        var configuration = RangeServerConfiguration()
        configuration.host = listen.host
        configuration.port = listen.port
        configuration.maxUploadBytesPerSecond = rate
        configuration.maxConnections = maxConns
        if let threads { configuration.threads = threads }
        let server = RangeServer(catalog: catalog, configuration: configuration, logger: logger)
        do { try await server.start() } catch { throw fail("cannot listen on \(listen.host):\(listen.port): \(error)") }
        try await server.waitUntilClosed()
    }
}

struct Mirror: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch a published release from other origins into ROOT, verified piece by piece; resumes if killed.")

    @Option(help: "Origin root directory to fill.") var root: String
    @Option(help: "Release name.") var name: String
    @Option(help: "Release version.") var version: String
    @Option(name: .customLong("source"), help: "Base URL of a source, in order of preference (repeat).")
    var sources: [String]
    @Option(name: .customLong("pubkey"), help: "Trusted release public key (PEM); repeat for several.")
    var pubkeys: [String]
    @Option(help: "Total download cap in bytes per second.") var rate: Int64?
    @Option(help: "Pieces in flight.") var parallel: Int = 8
    @Option(help: "Pieces in flight per source.") var perSource: Int = 4
    @Option(help: "Seconds a stalled transfer is given before its source loses the piece.") var stallSeconds: Int = 10

    func validate() throws {
        if sources.isEmpty { throw ValidationError("give at least one --source") }
        if pubkeys.isEmpty { throw ValidationError("give at least one --pubkey") }
        if parallel <= 0 || perSource <= 0 { throw ValidationError("--parallel and --per-source must be positive") }
    }

    func run() async throws {
        do {
            let keys = try pubkeys.map { path throws(TransferError) in try ReleaseKeys.loadPublic(FilePath(path)) }
            var options = DownloadOptions()
            options.maxBytesPerSecond = rate
            options.policy.maxInFlight = parallel
            options.policy.maxPerSource = perSource
            options.stallSeconds = stallSeconds
            let mirror = Seeder.Mirror(root: FilePath(root), trusting: keys, options: options)
            let (_, report) = try await mirror.run(name: name, version: version, sources: sources) { progress in
                // A line per tenth of the release, and the last piece.
                let step = max(1, progress.totalPieces / 10)
                guard progress.verifiedPieces % step == 0 || progress.verifiedPieces == progress.totalPieces else { return }
                FileHandle.standardError.write(Data("progress \(progress.verifiedBytes)/\(progress.totalBytes) bytes, \(progress.verifiedPieces)/\(progress.totalPieces) pieces\n".utf8))
            }
            printJSON(MirrorSummary(report))
        } catch { throw fail(error) }
    }
}

struct MirrorSummary: Encodable {
    var fetchedBytes: Int64, receivedBytes: Int64, resumedBytes: Int64, seconds: Double
    var bytesBySource: [String: Int64]
    var droppedSources: [String: String]

    init(_ report: DownloadReport) {
        fetchedBytes = report.fetchedBytes
        receivedBytes = report.receivedBytes
        resumedBytes = report.resumedBytes
        seconds = report.seconds
        bytesBySource = report.bytesBySource
        droppedSources = Dictionary(report.droppedSources.map { ($0.source, $0.reason) }, uniquingKeysWith: { a, _ in a })
    }
}
