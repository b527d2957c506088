import Agent
import ArgumentParser
import Glibc
import Logging

/// `fledge-agent`: runs on every host; beats to HBS, serves verified pieces to peers, exports
/// process metrics.
@main
struct FledgeAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fledge-agent",
        abstract: "The Fledge agent: heartbeats, self-upgrade, peer piece server, /metrics.",
        discussion: "Exit status: 0 stopped, 1 failed, 64 bad arguments or config.",
        version: AgentVersion.current,
        subcommands: [Run.self, CheckConfig.self],
        defaultSubcommand: Run.self)
}

func fail(_ message: Any, status: Int32 = 1) -> ExitCode {
    let line = Array("fledge-agent: error: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    return ExitCode(status)
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the agent (the default).")

    @Option(help: "JSON config file.") var config: String

    func run() async throws {
        let settings: AgentConfiguration
        do { settings = try AgentConfiguration.load(config) } catch { throw fail("\(config): \(error)", status: 64) }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        do {
            try await AgentApp(configuration: settings, configPath: config, logger: Logger(label: "fledge-agent")).run()
        } catch {
            throw fail(error)
        }
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file; exit non-zero with the reason.")

    @Option(help: "JSON config file.") var config: String

    func run() throws {
        do {
            _ = try AgentConfiguration.load(config)
            print("\(config): ok")
        } catch {
            throw fail("\(config): \(error)", status: 64)
        }
    }
}
