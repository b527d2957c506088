extension RolloutEngine {
    /// A host failed: its slot freed, a retry after a backoff while it has attempts left, and
    /// the rollout paused once more hosts failed than its budget allows.
    mutating func fail(
        _ host: String, _ progress: HostProgress, in id: String, reason: String, now: Int64, ledger: (any AdmissionLedger)?
    ) {
        ledger?.release(host: host)
        var progress = progress
        progress.phase = .failed
        progress.failures += 1
        progress.reason = reason
        progress.leaseUntil = nil
        progress.retryAt = progress.attempts < configuration.maxAttempts
            ? now + configuration.retryBackoffSeconds << Int64(min(progress.failures - 1, 10)) : nil
        record(.hostUpdated(rollout: id, host: host, progress))
        guard let rollout = state.rollouts[id], rollout.phase == .running, rollout.failedHosts > rollout.spec.failureBudget else { return }
        record(.rolloutPhase(
            rollout: id, phase: .paused,
            reason: "failure budget exceeded: \(rollout.failedHosts) hosts failed, budget \(rollout.spec.failureBudget)", at: now))
    }
}
