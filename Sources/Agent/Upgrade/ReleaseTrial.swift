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
        var probesPassed = 0
        var failure: String?
        var committed = false
    }

    let pending: PendingRelease
    let layout: ReleaseLayout
    let window: Duration
    let probe: HealthProbe?
    let releaseName: String
    let logger: Logger
    private let state = Mutex(State())

    init(pending: PendingRelease, layout: ReleaseLayout, configuration: AgentConfiguration, logger: Logger) {
        self.pending = pending
        self.layout = layout
        window = .milliseconds(Int(configuration.commitSeconds * 1000))
        probe = configuration.healthProbe
        releaseName = configuration.releaseName
        self.logger = logger
    }

    /// The trial this process runs, if `DATA/pending` names one: its binary is this version,
    /// and the config it was started with is the one the install put in place.
    static func pending(in layout: ReleaseLayout, version: String, configPath: String, logger: Logger) -> PendingRelease? {
        guard let pending = layout.read(PendingRelease.self, at: layout.pending) else { return nil }
        guard pending.binaryVersion == version else { return nil }
        if let expected = pending.configSHA256 {
            let running = (try? Digest.file(at: FilePath(configPath)))?.sha256
            guard running == expected else {
                logger.warning("\(pending.version) is pending, but \(configPath) is not the config it installed (sha256 \(running ?? "unreadable")): not confirming it")
                return nil
            }
        }
        return pending
    }

    /// A beat was answered.
    func answered() -> Step {
        let now = ContinuousClock.now
        enum Move { case none, ready, commit }
        let move: Move = state.withLock { state in
            guard !state.committed, state.failure == nil else { return .none }
            guard let readyAt = state.readyAt else {
                state.readyAt = now
                // No window and no probe: ready is healthy enough (a fleet bench, a lab).
                guard window == .zero, probe == nil else { return .ready }
                state.committed = true
                return .commit
            }
            guard now - readyAt >= window, probe == nil || state.probesPassed > 0 else { return .none }
            state.committed = true
            return .commit
        }
        switch move {
        case .none: return .none
        case .ready:
            // Written before anything says ready: a crash from here on is a crash in the window.
            try? Files.writeAtomically(Array("\(time(nil))\n".utf8), to: layout.ready)
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

    /// Runs the health probe every interval until the release commits. Returns why it failed,
    /// with `DATA/pending.failed` written, or nil once committed (or without a probe).
    func watch() async -> String? {
        guard let probe else { return nil }
        while !Task.isCancelled, !state.withLock({ $0.committed }) {
            let failure = try? await NIOThreadPool.singleton.runIfActive { probe.check() }
            if let failure = failure ?? nil {
                let decided = state.withLock { state -> Bool in
                    guard !state.committed else { return false }
                    state.failure = failure
                    return true
                }
                guard decided else { return nil }
                try? Files.writeAtomically(Array(failure.utf8), to: layout.failed)
                Files.syncDirectory(layout.data)
                return failure
            }
            state.withLock { $0.probesPassed += 1 }
            try? await Task.sleep(for: .milliseconds(Int(probe.intervalSeconds * 1000)))
        }
        return nil
    }

    /// The agent was stopped cleanly (SIGTERM) inside the window: not the release's fault, so
    /// the next start is one more start of the trial, not a crash after ready.
    func stoppedCleanly() {
        let open = state.withLock { !$0.committed && $0.failure == nil && $0.readyAt != nil }
        if open { Files.remove(layout.ready) }
    }
}
