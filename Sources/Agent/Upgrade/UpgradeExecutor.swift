#if canImport(FoundationEssentials)
import Fetch
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization
import SystemPackage
import Transfer
import Wire

/// Carries out an upgrade order: fetch (signed manifest and verified pieces, or falcon's one
/// file and md5), stage the release's files, self-test the new binary (`--version` must print
/// the target, `check-config` must pass, its unit must keep the guard), then install: record
/// what it will replace (`DATA/undo`) and the trial (`DATA/pending`), put the release's config
/// and unit in place, switch `current` with the old release kept as `previous`, and tell the
/// caller to exit so the supervisor starts the new version on trial (`ReleaseTrial`). Any
/// refusal or failure before the switch leaves the running version as it was and is reported
/// with its reason; a death mid-install is undone by the guard at the next start.
public final class UpgradeExecutor: Sendable {
    public enum Refusal: Error, CustomStringConvertible {
        case belowFloor(String)
        case wrongRelease(String)
        case unsigned
        case selfTest(String)
        case unit(String)
        case onTrial(String)

        public var description: String {
            switch self {
            case .belowFloor(let detail): "refused: \(detail)"
            case .wrongRelease(let detail): "refused: \(detail)"
            case .unsigned:
                "refused: a falcon order (md5 only) carries no signature, and this agent runs only signed releases; set allowFalcon: true in its config to accept falcon upgrades"
            case .selfTest(let detail): "the new binary failed its self-test: \(detail)"
            case .unit(let detail): "the release's unit file is refused: \(detail)"
            case .onTrial(let version): "refused: \(version) is on trial until it commits; no other release installs before"
            }
        }
    }

    let layout: ReleaseLayout
    let configuration: AgentConfiguration
    let configPath: String
    let verifier: ManifestVerifier
    let store: PieceStore
    let status: AgentStatus
    let version: String
    /// This host's range server port, named to the peers it fetches from (they may fetch from
    /// it in turn); 0 while it serves none.
    private let peerPort = Atomic<Int>(0)
    let logger: Logger
    private let busy = Atomic<Bool>(false)
    /// The download in progress and its rollout, to hand it the peers HBS sends later.
    private let running = Mutex<(rollout: String, downloader: ReleaseDownloader)?>(nil)

    public init(
        layout: ReleaseLayout, configuration: AgentConfiguration, configPath: String, verifier: ManifestVerifier,
        store: PieceStore, status: AgentStatus, version: String, logger: Logger
    ) {
        self.layout = layout
        self.configuration = configuration
        self.configPath = configPath
        self.verifier = verifier
        self.store = store
        self.status = status
        self.version = version
        self.logger = logger
    }

    /// This host serves peers on `port` (its range server is up).
    public func serving(on port: Int) { peerPort.store(port, ordering: .relaxed) }

    /// The order of the upgrade in progress, sent again with more sources (a swarm's new
    /// peers): the running download takes them in.
    public func offer(_ order: UpgradeOrder) {
        guard let current = running.withLock({ $0 }), current.rollout == order.rolloutId else { return }
        current.downloader.offer(sources: order.sources + (order.fallbackSources ?? []))
    }

    /// A peer fetching `name` `version` from this host announced its own range server: if this
    /// host is downloading that release, it may fetch from the peer too.
    public func announced(peer url: String, name: String, version: String) {
        guard let current = running.withLock({ $0 }), current.downloader.assembly.manifest.name == name,
              current.downloader.assembly.manifest.version == version else { return }
        current.downloader.offer(announced: url)
    }

    /// Returns true when the release is switched and the agent must exit for it to start.
    public func execute(_ order: UpgradeOrder) async -> Bool {
        guard !busy.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        defer { busy.store(false, ordering: .releasing) }
        logger.info("upgrading to \(order.name) \(order.version) (rollout \(order.rolloutId)) from \(order.sources.joined(separator: ", "))")
        status.update {
            $0.state = .downloading
            $0.rolloutId = order.rolloutId
            $0.error = nil
            $0.progressBytes = 0
            $0.downloadedFrom = [:]
            $0.droppedSources = []
            $0.reportedSources = []
        }
        do {
            try check(order)
            let files = try await fetch(order)
            status.update { $0.state = .installing }
            let release = try stage(order, files)
            Failpoint.reach("staged")
            try selfTest(release, order: order)
            try install(release, order: order)
            status.update { $0.state = .restarting }
            logger.info("switched to \(order.version); restarting into it")
            return true
        } catch {
            logger.error("upgrade to \(order.version) failed: \(error); \(version) keeps running")
            let kind = Self.kind(of: error)
            status.update {
                $0.state = .failed
                $0.error = "\(error)"
                $0.failures[kind, default: 0] += 1
            }
            return false
        }
    }

    /// The reason label of `fledge_agent_upgrade_failures_total`.
    static func kind(of error: any Error) -> String {
        switch error {
        case Refusal.selfTest: "self_test"
        case Refusal.unit: "unit"
        case Refusal.onTrial: "on_trial"
        case Refusal.unsigned: "unsigned"
        case Refusal.belowFloor: "floor"
        case is Refusal: "refused"
        case TransferError.diskFull: "disk_full"
        case TransferError.hashMismatch: "hash_mismatch"
        case TransferError.allSourcesFailed: "sources"
        default: "other"
        }
    }

    /// Whether the order may be carried out at all: signed (unless falcon is allowed), a
    /// version, and above the floor (`VersionFloor`).
    private func check(_ order: UpgradeOrder) throws {
        if let trial = layout.read(PendingRelease.self, at: layout.pending) { throw Refusal.onTrial(trial.version) }
        if case .falcon = order.locator, !configuration.allowFalcon { throw Refusal.unsigned }
        guard let target = SemanticVersion(order.version), let running = SemanticVersion(version) else {
            throw Refusal.wrongRelease("'\(order.version)' is not a version")
        }
        guard ReleaseName.isValid(order.version) else { throw Refusal.wrongRelease("'\(order.version)' is not a release name") }
        let previous = layout.target(of: layout.previous)?.lastComponent.map { ReleaseName.version(ofDirectory: $0.string) }
        if let refusal = layout.readFloor().refusal(
            target: target, running: running, rollback: order.allowsDowngrade == true, previous: previous) {
            throw Refusal.belowFloor(refusal)
        }
    }

    /// The verified files of the release, by role.
    private func fetch(_ order: UpgradeOrder) async throws -> [ReleaseFile.Role: FilePath] {
        var options = DownloadOptions()
        options.maxBytesPerSecond = configuration.downloadBytesPerSecond
        options.policy = configuration.swarmPolicy
        options.seedShare = order.seedShare
        let port = peerPort.load(ordering: .relaxed)
        options.announcePort = port > 0 ? port : nil
        switch order.locator {
        case .fledge(let manifestURL):
            // Peers serve the manifest too; the fallbacks hold it for sure.
            let manifest = try verifier.fetch(
                name: order.name, version: order.version, from: order.sources + (order.fallbackSources ?? []),
                manifestURL: manifestURL, maxBytes: options.maxManifestBytes, seconds: options.manifestSeconds)
            let assembly = try store.assembly(for: manifest)
            let status = self.status, logger = self.logger
            // Peers see its verified pieces as they arrive: what a swarm's relay needs.
            let held = store.completeReleases()
            let downloader = ReleaseDownloader(
                assembly: assembly, sources: order.sources, fallbacks: order.fallbackSources ?? [], options: options
            ) { progress in
                let known = Set(status.current.droppedSources.map(\.source))
                for dropped in progress.droppedSources where !known.contains(dropped.source) {
                    logger.warning("dropped source \(dropped.source): \(dropped.reason)")
                }
                status.update {
                    $0.progressBytes = progress.verifiedBytes
                    $0.downloadedFrom = progress.bytesBySource
                    $0.droppedSources = progress.droppedSources
                    $0.reportedSources = progress.misbehavingSources
                    $0.held = held + [HeldRelease(
                        name: manifest.name, version: manifest.version, complete: false, verifiedPieces: progress.verifiedPieces)]
                }
            }
            running.withLock { $0 = (order.rolloutId, downloader) }
            defer { running.withLock { $0 = nil } }
            let report = try await downloader.download()
            status.update { now in
                for (source, bytes) in report.bytesBySource { now.downloadedTotal[source, default: 0] += bytes }
            }
            self.status.update { $0.held = store.completeReleases() }
            var files: [ReleaseFile.Role: FilePath] = [:]
            for file in manifest.files {
                let path = assembly.directory.appending(file.name)
                // Whole files once more before anything runs them: what is on disk, as signed.
                let digest = try Digest.file(at: path)
                guard digest.sha256 == file.sha256 else {
                    throw TransferError.hashMismatch("\(file.name) on disk hashes to \(digest.sha256), the manifest says \(file.sha256)")
                }
                files[file.role] = path
            }
            return files
        case .falcon(let wgetURL, let type, let binMD5, let cfgMD5):
            let directory = layout.data.appending("falcon").appending(order.version)
            try Files.makeDirectory(directory)
            var files: [ReleaseFile.Role: FilePath] = [:]
            let downloader = WholeFileDownloader(options: options)
            if type != 1 {
                let path = directory.appending("bin")
                _ = try downloader.fetch(urls: [WholeFileDownloader.falconURL(wgetURL: wgetURL, version: order.version)], md5: binMD5, to: path)
                files[.bin] = path
            }
            if type != 0 {
                let path = directory.appending("cfg")
                _ = try downloader.fetch(
                    urls: [WholeFileDownloader.falconURL(wgetURL: wgetURL, version: order.version, prefix: "cfg")], md5: cfgMD5,
                    to: path, mode: 0o644)
                files[.cfg] = path
            }
            return files
        }
    }

    /// Copies the files into `releases/VERSION` under their fixed names (a falcon config-only
    /// order keeps the running binary). A directory the running or previous release lives in is
    /// never touched: then the release goes to `releases/VERSION~N`.
    private func stage(_ order: UpgradeOrder, _ files: [ReleaseFile.Role: FilePath]) throws -> FilePath {
        let inUse = [layout.current, layout.previous].compactMap { layout.target(of: $0) }
        var release = layout.release(order.version)
        var copy = 1
        while inUse.contains(release) {
            copy += 1
            release = layout.release("\(order.version)~\(copy)")
        }
        let staging = FilePath(release.string + ".staging")
        Files.removeFlatDirectory(staging)
        try Files.makeDirectory(staging)
        let binary = files[.bin] ?? layout.current.appending(ReleaseLayout.binaryName)
        try Files.copy(binary, to: staging.appending(ReleaseLayout.binaryName), mode: 0o755)
        if let config = files[.cfg] {
            if case .falcon = order.locator {
                // Unsigned: it may change the agent's settings, never what keeps the host safe.
                try Files.writeAtomically(try protectedMerge(config), to: staging.appending(ReleaseLayout.configName))
            } else {
                try Files.copy(config, to: staging.appending(ReleaseLayout.configName), mode: 0o644)
            }
        }
        if let unit = files[.unit] { try Files.copy(unit, to: staging.appending(ReleaseLayout.unitName), mode: 0o644) }
        Files.removeFlatDirectory(release)
        try Files.rename(staging, to: release)
        Files.syncDirectory(layout.releases)
        return release
    }

    /// A falcon config with the running config's `protectedKeys` put back (or removed where
    /// the running config has none).
    private func protectedMerge(_ path: FilePath) throws -> [UInt8] {
        let decoder = JSONDecoder()
        guard case .object(var merged)? = try? decoder.decode(JSONValue.self, from: Data(try Files.read(path))),
              case .object(let current)? = try? decoder.decode(JSONValue.self, from: Data(try Files.read(FilePath(configPath))))
        else { throw Refusal.wrongRelease("the falcon config is not a JSON object") }
        for key in AgentConfiguration.protectedKeys { merged[key] = current[key] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(JSONValue.object(merged)))
    }

    /// A falcon order of type 1 changes the config only: the binary stays the running one.
    private static func isConfigOnly(_ order: UpgradeOrder) -> Bool {
        if case .falcon(_, 1, _, _) = order.locator { true } else { false }
    }

    /// `--version` must print the target; `check-config` must accept the config it will run
    /// with; its unit file (if it ships one) must keep what makes the install safe.
    private func selfTest(_ release: FilePath, order: UpgradeOrder) throws {
        let binary = release.appending(ReleaseLayout.binaryName).string
        if !Self.isConfigOnly(order) {
            let outcome = try Self.run(binary, ["--version"])
            let printed = String(outcome.output.split(whereSeparator: \.isNewline).first ?? "").split(separator: " ").joined(separator: " ")
            guard outcome.status == 0, printed == order.version else {
                throw Refusal.selfTest("--version printed '\(printed)' (exit \(outcome.status)\(outcome.timedOut ? ", killed after 30 s" : "")), expected '\(order.version)'")
            }
        }
        let config = Files.exists(release.appending(ReleaseLayout.configName))
            ? release.appending(ReleaseLayout.configName).string : configPath
        let outcome = try Self.run(binary, ["check-config", "--config", config])
        guard outcome.status == 0 else {
            throw Refusal.selfTest("check-config --config \(config) failed\(outcome.timedOut ? " (killed after 30 s)" : ""): \(outcome.lastLines)")
        }
        let unit = release.appending(ReleaseLayout.unitName)
        if let text = try? Files.read(unit) {
            let problems = UnitFileCheck.problems(in: String(decoding: text, as: UTF8.self)) + UnitFileCheck.verify(unit, installedAt: unitPath)
            if !problems.isEmpty { throw Refusal.unit(problems.joined(separator: "; ")) }
        }
    }

    /// Where the release's unit file goes: the configured path, or systemd's where it runs.
    private var unitPath: FilePath? {
        if let path = configuration.unitPath { return FilePath(path) }
        return Self.systemdRuns ? FilePath("/etc/systemd/system/\(ReleaseLayout.unitName)") : nil
    }

    static var systemdRuns: Bool { Files.exists(FilePath("/run/systemd/system")) }

    /// Whether systemd reads `path` (so it must reload after it changes); a unit elsewhere is
    /// read by whatever supervises the agent there (`scripts/supervise` rereads it each start).
    static func systemdReads(_ path: FilePath) -> Bool {
        systemdRuns && ["/etc/systemd/", "/run/systemd/", "/usr/lib/systemd/", "/lib/systemd/"].contains { path.string.hasPrefix($0) }
    }

    /// `systemctl daemon-reload`, where systemd reads the unit.
    private func reloadSystemd(for path: FilePath) throws {
        guard Self.systemdReads(path) else { return }
        let outcome = try Self.run("/bin/systemctl", ["daemon-reload"])
        guard outcome.status == 0 else { throw Refusal.unit("systemctl daemon-reload failed: \(outcome.lastLines)") }
    }

    /// Puts the staged release in place, in an order a death at any step can be undone from:
    /// what it will replace (`DATA/undo`), the trial (`DATA/pending`), the config and unit,
    /// `previous` := what runs now, and last `current` := the release. Before `current` moves,
    /// the guard undoes it all at the next start (the switch did not complete); after, the
    /// release is on trial.
    private func install(_ release: FilePath, order: UpgradeOrder) throws {
        var files: [InstalledFile] = []
        if let config = try? Files.read(release.appending(ReleaseLayout.configName)), (try? Files.read(FilePath(configPath))) != config {
            files.append(InstalledFile(name: "config", path: FilePath(configPath), content: config))
        }
        if let unit = try? Files.read(release.appending(ReleaseLayout.unitName)) {
            if let path = unitPath {
                if (try? Files.read(path)) != unit { files.append(InstalledFile(name: "unit", path: path, content: unit)) }
            } else {
                logger.info("unit file staged (\(unit.count) bytes); no unitPath is configured and no systemd runs here, so it is not installed")
            }
        }
        for leftover in layout.trialMarkers { Files.remove(leftover) }
        try layout.recordUndo(files)
        let config = files.first { $0.name == "config" }.map { Hex.encode(Digest.sha256($0.content)) }
        let pending = PendingRelease(
            version: order.version, release: release.lastComponent?.string ?? order.version, from: version,
            rolloutId: order.rolloutId, binaryVersion: Self.isConfigOnly(order) ? version : order.version, configSHA256: config)
        do {
            try layout.write(pending, to: layout.pending)
            Failpoint.reach("pending")
            for file in files {
                try Files.writeAtomically(file.content, to: file.path)
                logger.info("installed the release's \(file.name) at \(file.path)")
            }
            if let unit = files.first(where: { $0.name == "unit" }) { try reloadSystemd(for: unit.path) }
            Failpoint.reach("installed")
            if let running = layout.target(of: layout.current), running != release {
                try layout.point(layout.previous, at: running)
            }
            try layout.point(layout.current, at: release)
        } catch {
            // Not switched: everything goes back now, while this version still runs.
            let unit = files.first { $0.name == "unit" }
            if layout.undoInstall(), let unit { try? reloadSystemd(for: unit.path) }
            throw error
        }
        Failpoint.reach("switched")
    }

    /// Runs a command to its end (killed, with what it started, after 30 s).
    static func run(_ path: String, _ arguments: [String]) throws -> Subprocess.Outcome {
        try Subprocess.run(path, arguments)
    }
}
