import Glibc
import Logging
import NIOPosix
import Synchronization
import SystemPackage
import Transfer
import Wire

/// The release on trial (`DATA/pending`) as this process runs it. It gets ready with the first
/// beat HBS answers (`DATA/pending.ready`, and `READY=1` to the service manager), then must
/// stay healthy for its commit window: beats answered, its health probe (if its config declares
/// one) passing. It commits at the first beat answered after the window. A failed probe writes
/// `DATA/pending.failed` and ends the agent; the guard rolls back before the next start, as it
/// does when the agent crashed or hung after getting ready. The trial itself never rolls back:
/// that is the guard's alone, so it does not depend on the new binary.
final class ReleaseTrial: Sendable {
    /// How a beat's answer moved the trial.
    enum Step: Equatable {
        case none
        /// The first answered beat: the release runs and HBS hears it.
        case ready
        /// The window passed healthy (or there is none): committed, and ready if it was not yet.
        case committed
    }

    private struct State {
        var readyAt: ContinuousClock.Instant?
        var probePassed = false
        var failure: String?
        var committed = false
        /// The agent is stopping: nothing it learns from now on may judge the release (a beat
        /// answered after SIGTERM, a probe failing because the host is shutting down).
        var stopped = false
    }

    let pending: PendingRelease
    let layout: ReleaseLayout
    let window: Duration
    let probe: HealthProbe?
    let releaseName: String
    let logger: Logger
    private let state = Mutex(State())
    private let probing = Mutex<Task<Void, Never>?>(nil)

    init(pending: PendingRelease, layout: ReleaseLayout, configuration: AgentConfiguration, logger: Logger) {
        self.pending = pending
        self.layout = layout
        window = .milliseconds(Int(configuration.commitSeconds * 1000))
        probe = configuration.healthProbe
        releaseName = configuration.releaseName
        self.logger = logger
    }

    /// The trial this process runs, if `DATA/pending` names one: `DATA/current` is its release
    /// (the guard undid any switch that did not complete) and its binary is this version. A
    /// config-only release (falcon type 1) runs the same binary; its config is told by digest,
    /// and a config someone changed since the install is said in the log, not judged.
    static func pending(in layout: ReleaseLayout, version: String, configPath: String, logger: Logger) -> PendingRelease? {
        guard let pending = layout.read(PendingRelease.self, at: layout.pending),
              layout.target(of: layout.current)?.lastComponent?.string == pending.release, pending.binaryVersion == version
        else { return nil }
        if let expected = pending.configSHA256, let running = try? Digest.file(at: FilePath(configPath)).sha256, running != expected {
            logger.warning("\(configPath) changed since \(pending.version) installed its config (sha256 \(running), installed \(expected))")
        }
        return pending
    }

    /// A beat was answered.
    func answered() -> Step {
        let now = ContinuousClock.now
        enum Move { case none, ready, commit }
        let move: Move = state.withLock { state in
            guard !state.committed, state.failure == nil, !state.stopped else { return .none }
            guard let readyAt = state.readyAt else {
                state.readyAt = now
                // No window and no probe: ready is healthy enough (a fleet bench, a lab).
                guard window == .zero, probe == nil else { return .ready }
                state.committed = true
                return .commit
            }
            guard now - readyAt >= window, probe == nil || state.probePassed else { return .none }
            state.committed = true
            return .commit
        }
        switch move {
        case .none: return .none
        case .ready:
            // Written before anything says ready: a crash from here on is a crash in the window.
            try? Files.writeAtomically(Array("\(time(nil))\n".utf8), to: layout.ready)
            // Starts before this one were not its fault: stops for a reboot inside the window
            // must not add up to "did not get ready".
            Files.remove(layout.attempts)
            Failpoint.reach("ready")
            logger.info("\(pending.version) is ready; it commits after \(window.seconds) s of health\(probe == nil ? "" : " and passing probes")")
            return .ready
        case .commit:
            layout.commit(version: pending.binaryVersion, name: releaseName)
            Failpoint.reach("committed")
            logger.info("\(pending.version) stayed healthy for \(window.seconds) s: committed")
            return .committed
        }
    }

    /// Starts the health probe (once ready): `onFailure` runs once if it fails.
    func startProbing(onFailure: @escaping @Sendable (String) -> Void) {
        guard probe != nil else { return }
        let task = Task { if let failure = await self.watch() { onFailure(failure) } }
        probing.withLock { $0 = task }
    }

    /// Runs the health probe every interval until the release commits. Returns why it failed,
    /// with `DATA/pending.failed` written, or nil once committed (or without a probe).
    func watch() async -> String? {
        guard let probe else { return nil }
        while !Task.isCancelled, !state.withLock({ $0.committed || $0.stopped }) {
            let failure = try? await NIOThreadPool.singleton.runIfActive { probe.check() }
            if let failure = failure ?? nil {
                let decided = state.withLock { state -> Bool in
                    guard !state.committed, !state.stopped else { return false }
                    state.failure = failure
                    return true
                }
                guard decided else { return nil }
                // One line of printable text, whole characters: the guard copies it into JSON.
                let text = String(failure.map { $0.isASCII && ($0.asciiValue! < 32 || $0.asciiValue! == 127) ? " " : $0 }.prefix(500))
                try? Files.writeAtomically(Array(text.utf8), to: layout.failed)
                Files.syncDirectory(layout.data)
                return failure
            }
            state.withLock { $0.probePassed = true }
            try? await Task.sleep(for: .milliseconds(Int(probe.intervalSeconds * 1000)))
        }
        return nil
    }

    /// The agent is stopping: from now on nothing judges the release. Stopped cleanly
    /// (SIGTERM) inside the window is not the release's fault: the next start is one more
    /// start of the trial, not a crash after ready.
    func stop(cleanly: Bool) {
        let open = state.withLock { state -> Bool in
            state.stopped = true
            return !state.committed && state.failure == nil && state.readyAt != nil
        }
        probing.withLock { $0 }?.cancel()
        if open && cleanly { Files.remove(layout.ready) }
    }
}
