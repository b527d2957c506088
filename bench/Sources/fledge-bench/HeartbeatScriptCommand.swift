import ArgumentParser
import SystemPackage

/// `fledge-bench heartbeat-script` (hidden): prints the wrk script `fledge-bench hbs` beats
/// with, so other tools (`bench/hbs_ab.py`) send the very same requests.
struct HeartbeatScriptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heartbeat-script",
        abstract: "Prints fledge-bench hbs's wrk script: JSON heartbeats of --hosts idle hosts, each with its secret.",
        shouldDisplay: false)

    @Option(help: "Distinct hosts (host-00000 ...).")
    var hosts: Int

    @Option(help: "wrk threads the script is for.")
    var threads: Int = 2

    @Option(help: "File of the hosts' secrets, one per line, in host order.")
    var secrets: String

    func validate() throws {
        if hosts < threads || threads <= 0 { throw ValidationError("--hosts must be at least --threads, and --threads positive") }
    }

    func run() {
        var script = HeartbeatScript(hosts: hosts, threads: threads)
        script.secrets = FilePath(secrets)
        print(script.text)
    }
}
