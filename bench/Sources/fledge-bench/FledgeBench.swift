import ArgumentParser

/// `fledge-bench`: measures Fledge's data plane and heartbeat server against a well-known
/// reference, both in the same run on this machine, and prints the ratios.
@main
struct FledgeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fledge-bench",
        abstract: "Benchmark Fledge's range server, downloader, hashing, heartbeat server, agent and whole fleet against nginx, curl, openssl, hello-world Hummingbird, falcon-agent and Kumar-Ross T_min.",
        discussion: """
            Each subcommand measures ours and a reference in the same run, on loopback (127.0.0.1) \
            only, prints a table, and ends its standard output with exactly one JSON line holding \
            the ratios (ours / reference; above 1.0 means ours is faster). Progress goes to \
            standard error. Speeds are measured, never asserted: the exit status is 0 whenever \
            the measurement itself succeeded.
            """,
        subcommands: [ServeBench.self, FetchBench.self, HashBench.self, HBSBench.self, AgentBench.self, FleetBench.self, SimulateBench.self, HelloServer.self, HeartbeatScriptCommand.self])
}
