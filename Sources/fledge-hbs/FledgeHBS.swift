import ArgumentParser
import Foundation
import HBS
import Logging
import Rollouts

/// `fledge-hbs`: the heartbeat server. Agents beat to it; it answers with upgrade orders.
/// Speaks falcon-plus' admin API unchanged, and the richer v1 API.
@main
struct FledgeHBS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fledge-hbs",
        abstract: "Heartbeat server: rollouts of the agent fleet, falcon-compatible admin API.",
        discussion: "Every flag can also be given in the JSON file named by --config (same names in camelCase); flags win. Exit status: 0 stopped, 1 failed, 64 bad arguments.")

    @Option(help: "JSON config file.") var config: String?
    @Option(help: "Directory of the embedded store.") var data: String?
    @Option(help: "redis://HOST:PORT shared by several HBS instances (default: the embedded store in --data).")
    var redis: String?
    @Option(help: "HOST:PORT for agents' heartbeats (default 0.0.0.0:6030).") var agentListen: String?
    @Option(help: "HOST:PORT for the admin API (default 0.0.0.0:6031).") var adminListen: String?
    @Option(help: "File with the admin bearer token.") var adminTokenFile: String?
    @Option(help: "File with the fleet's enrolment token (default: one HBS makes, DATA/fleet-token or in Redis).")
    var fleetTokenFile: String?
    @Flag(help: "Accept beats without a per-host credential (a lab: anyone reaching the agent port speaks for any host).")
    var anonymousBeats = false
    @Flag(help: "Believe the address a beat advertises instead of the connection's (hosts behind NAT).")
    var trustAdvertisedAddresses = false
    @Flag(help: "Admin reads (agents, rollouts, /metrics) open to anyone, not only to those who may change things.")
    var publicReads = false
    @Option(help: "PEM certificate chain: with --tls-key, both listeners serve HTTPS only.") var tlsCertificate: String?
    @Option(help: "PEM private key of --tls-certificate.") var tlsKey: String?
    @Option(help: "Network allowed to change things without a token (CIDR; repeat). Default: loopback.")
    var adminAllow: [String] = []
    @Option(help: "Hosts upgrading at once unless a rollout says otherwise (default 2000).") var maxConcurrent: Int?
    @Option(help: "Release name of the agent (default fledge-agent).") var agentName: String?
    @Option(help: "Beat interval in seconds while a rollout has work (default 1).") var fastBeat: Double?
    @Option(help: "Beat interval in seconds of an idle fleet (default 60).") var slowBeat: Double?

    func run() async throws {
        var settings = HBSConfiguration()
        if let config {
            do { settings = try HBSConfiguration.load(from: config) } catch {
                throw ValidationError("--config \(config): \(error)")
            }
        }
        if let data { settings.data = data }
        if let redis { settings.redis = redis }
        if let agentListen { settings.agentListen = agentListen }
        if let adminListen { settings.adminListen = adminListen }
        if let adminTokenFile { settings.adminTokenFile = adminTokenFile }
        if let fleetTokenFile { settings.fleetTokenFile = fleetTokenFile }
        if anonymousBeats { settings.anonymousBeats = true }
        if trustAdvertisedAddresses { settings.trustAdvertisedAddresses = true }
        if publicReads { settings.publicReads = true }
        if let tlsCertificate { settings.tlsCertificate = tlsCertificate }
        if let tlsKey { settings.tlsKey = tlsKey }
        guard (settings.tlsCertificate == nil) == (settings.tlsKey == nil) else {
            throw ValidationError("--tls-certificate and --tls-key go together")
        }
        if !adminAllow.isEmpty { settings.adminAllow = adminAllow }
        if let maxConcurrent { settings.maxConcurrent = maxConcurrent }
        if let agentName { settings.agentName = agentName }
        if let fastBeat { settings.engine.fastBeatSeconds = fastBeat }
        if let slowBeat { settings.engine.slowBeatSeconds = slowBeat }
        guard settings.maxConcurrent > 0 else { throw ValidationError("--max-concurrent must be positive") }

        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "fledge-hbs")
        do {
            try await HBSServer(configuration: settings, logger: logger).run()
        } catch let error as HBSStartError {
            FileHandle.standardError.write(Data("fledge-hbs: error: \(error)\n".utf8))
            throw ExitCode(64)
        } catch {
            FileHandle.standardError.write(Data("fledge-hbs: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
