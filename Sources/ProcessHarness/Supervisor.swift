import Foundation

/// `scripts/supervise DATA CONFIG`: what systemd does for fledge-agent.service where no systemd
/// runs (Restart=always, the guard before each start, a confirmation watchdog), as a real
/// process whose agent restarts into each new release. Tests, the local fleet and the bench
/// start agents this way.
public enum Supervisor {
    /// Starts an agent under the supervisor. `confirmSeconds`: how long a new release may take
    /// to confirm before it counts as failed; `restartSeconds`: the pause before a restart;
    /// `namespace`: a network namespace to run it (and so every agent it starts) in.
    public static func start(
        data: String, config: String, confirmSeconds: Int = 30, restartSeconds: Double = 0.2, namespace: String? = nil
    ) throws -> ChildProcess {
        let arguments = [Binaries.script("supervise"), data, config]
        let environment = ["FLEDGE_CONFIRM_SECONDS": "\(confirmSeconds)", "FLEDGE_RESTART_SECONDS": "\(restartSeconds)"]
        if let namespace { return try ChildProcess.inNamespace(namespace, "/bin/bash", arguments, environment: environment) }
        return try ChildProcess("/bin/bash", arguments, environment: environment)
    }

    /// Stops the supervisor as systemd stops a unit: SIGTERM, which it passes to the agent and
    /// waits for; SIGKILL to both after `grace`. Blocks the calling thread, polling, so it works
    /// in `defer`; async code calls `stop(_:grace:) async`.
    public static func stopBlocking(_ supervisor: ChildProcess, grace: Duration = .seconds(5)) {
        let agents = ProcFS.descendants(of: supervisor.pid)
        supervisor.signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while supervisor.isRunning && ContinuousClock.now < deadline { usleep(25_000) }
        killLeftovers(supervisor, agents)
    }

    /// `stopBlocking` without blocking: waits by sleeping, so many supervisors stop at once.
    public static func stop(_ supervisor: ChildProcess, grace: Duration = .seconds(5)) async {
        let agents = ProcFS.descendants(of: supervisor.pid)
        supervisor.signal(SIGTERM)
        await ChildProcess.waitFor(seconds: grace.seconds) { !supervisor.isRunning }
        killLeftovers(supervisor, agents)
    }

    /// SIGKILL to a supervisor still there and to any of its agents that outlived it.
    private static func killLeftovers(_ supervisor: ChildProcess, _ agents: [Int32]) {
        supervisor.signal(SIGKILL)
        for pid in agents + ProcFS.descendants(of: supervisor.pid) where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }
}
