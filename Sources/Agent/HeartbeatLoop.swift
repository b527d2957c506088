#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import NIOPosix
import SystemPackage
import Transfer
import Wire

/// Beats to HBS for as long as the agent runs: on start, then when HBS says (long-polling while
/// idle, so a new rollout's order arrives at once), with jitter, and with backoff and the next
/// HBS URL in turn when one does not answer. Orders go to `onOrder`; when it returns true (the
/// release is switched) one more beat reports "restarting" and the loop ends. `onAnswered` runs
/// after every answered beat (the new version confirms its health there).
public struct HeartbeatLoop: Sendable {
    public let configuration: AgentConfiguration
    public let hostname: String
    public let version: String
    public let peerPort: Int?
    public let status: AgentStatus
    public let logger: Logger
    public let onOrder: @Sendable (UpgradeOrder) async -> Bool
    public let onAnswered: @Sendable () -> Void

    public init(
        configuration: AgentConfiguration, hostname: String, version: String, peerPort: Int?, status: AgentStatus,
        logger: Logger, onAnswered: @escaping @Sendable () -> Void = {},
        onOrder: @escaping @Sendable (UpgradeOrder) async -> Bool
    ) {
        self.configuration = configuration
        self.hostname = hostname
        self.version = version
        self.peerPort = peerPort
        self.status = status
        self.logger = logger
        self.onOrder = onOrder
        self.onAnswered = onAnswered
    }

    /// Runs until the task is cancelled, or an order switched the release.
    public func run() async {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        defer { thread.shutdownGracefully { _ in } }
        let token = configuration.fleetTokenFile.flatMap { try? Files.read(FilePath($0)) }
            .map { String(decoding: $0, as: UTF8.self).split(whereSeparator: \.isWhitespace).joined() }
        var index = 0
        var failures = 0
        var ip = configuration.advertiseIP ?? ""
        let wait = Int(configuration.heartbeatSeconds)
        var finishing = false
        while !Task.isCancelled {
            // The last beat before a restart reports "restarting" and does not wait.
            let url = configuration.hbs[index] + (finishing ? "/v1/heartbeat" : "/v1/heartbeat?wait=\(wait)")
            let body = beatBody(ip: ip)
            do {
                let (status, answer, localIP) = try await thread.runIfActive {
                    let result = try Curl.postJSON(
                        url, body: body, headers: token.map { ["Authorization: Bearer \($0)"] } ?? [],
                        timeoutSeconds: Double(wait) + 10)
                    return (result.status, result.body, result.localIP)
                }
                guard status == 200, let reply = try? JSONDecoder().decode(HeartbeatReply.self, from: Data(answer)) else {
                    throw TransferError.http("HTTP \(status): \(String(decoding: answer.prefix(200), as: UTF8.self))")
                }
                failures = 0
                self.status.update { $0.beats += 1 }
                if finishing { return }
                onAnswered()
                if let order = reply.order, await onOrder(order) {
                    finishing = true
                    continue
                }
                // The first answer tells which address HBS sees this host at: report it at once.
                if configuration.advertiseIP == nil, let localIP, localIP != ip {
                    ip = localIP
                    continue
                }
                try? await Task.sleep(for: Self.jittered(min(reply.nextBeatSeconds, configuration.heartbeatSeconds)))
            } catch {
                failures += 1
                self.status.update { $0.beatFailures += 1 }
                if finishing { return }  // restarting matters more than saying so
                let backoff = min(30, 0.5 * Double(1 << min(failures, 6)))
                logger.warning("heartbeat to \(configuration.hbs[index]) failed (\(error)); next HBS in \(backoff) s")
                index = (index + 1) % configuration.hbs.count
                try? await Task.sleep(for: Self.jittered(backoff))
            }
        }
    }

    /// This beat's JSON.
    func beatBody(ip: String) -> [UInt8] {
        let now = status.current
        let beat = HeartbeatRequest(
            hostname: hostname, ip: ip, version: version, labels: configuration.labels, state: now.state,
            rolloutId: now.rolloutId, progressBytes: now.progressBytes, downloadedFrom: now.downloadedFrom,
            error: now.error, held: now.held, peerPort: peerPort)
        return Array((try? JSONEncoder().encode(beat)) ?? Data())
    }

    /// ±10 %, so a fleet restarted at once does not beat in lockstep.
    static func jittered(_ seconds: Double) -> Duration {
        .milliseconds(Int(max(0, seconds) * 1000 * Double.random(in: 0.9...1.1)))
    }
}
