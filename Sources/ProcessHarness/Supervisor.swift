import Foundation

/// `scripts/supervise DATA CONFIG UNIT`: deploy/fledge-agent.service run as systemd runs it
/// where no systemd runs (the guard before each start, Type=notify, the watchdog, stop timeouts
/// with SIGKILL, Restart=always), as a real process whose agent restarts into each new release.
/// Tests, the local fleet and the bench start agents this way. Each host has its own copy of the
/// unit (the one its upgrades replace) and a drop-in with the harness's settings.
public enum Supervisor {
    /// Where the unit of the host with data directory `data` lives: its agent's `unitPath`.
    public static func unitPath(data: String) -> String { data + ".unit/fledge-agent.service" }

    /// What the harness changes in the unit (`UNIT.d/harness.conf`): quick restarts and stops.
    public static let harnessSettings = ["RestartSec": "0.2", "TimeoutStopSec": "5", "TimeoutStartSec": "30"]

    /// Starts an agent under the supervisor. The host's unit is deploy/fledge-agent.service
    /// (copied at its `unitPath` the first time); `service`: `[Service]` settings for its
    /// drop-in on top of `harnessSettings` (`Environment` too); `environment`: for the
    /// supervisor and so every agent it starts; `namespace`: a network namespace to run in.
    public static func start(
        data: String, config: String, service: [String: String] = [:], environment: [String: String] = [:],
        namespace: String? = nil
    ) throws -> ChildProcess {
        let unit = unitPath(data: data)
        let files = FileManager.default
        try files.createDirectory(atPath: unit + ".d", withIntermediateDirectories: true)
        if !files.fileExists(atPath: unit) { try files.copyItem(atPath: Binaries.deployFile("fledge-agent.service"), toPath: unit) }
        let settings = harnessSettings.merging(service) { $1 }
        let dropIn = "[Service]\n" + settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
        try dropIn.write(toFile: unit + ".d/harness.conf", atomically: true, encoding: .utf8)
        let arguments = [Binaries.script("supervise"), data, config, unit]
        let python = try Binaries.tool("python3")
        if let namespace { return try ChildProcess.inNamespace(namespace, python, arguments, environment: environment) }
        return try ChildProcess(python, arguments, environment: environment)
    }

    /// Stops the supervisor as systemd stops a unit: SIGTERM, which it passes to the agent and
    /// waits for; SIGKILL to both after `grace`. Blocks the calling thread, polling, so it works
    /// in `defer`; async code calls `stop(_:grace:) async`.
    public static func stopBlocking(_ supervisor: ChildProcess, grace: Duration = .seconds(8)) {
        let agents = ProcFS.descendants(of: supervisor.pid)
        supervisor.signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while supervisor.isRunning && ContinuousClock.now < deadline { usleep(25_000) }
        killLeftovers(supervisor, agents)
    }

    /// `stopBlocking` without blocking: waits by sleeping, so many supervisors stop at once.
    public static func stop(_ supervisor: ChildProcess, grace: Duration = .seconds(8)) async {
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
