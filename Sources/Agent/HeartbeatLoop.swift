#if canImport(FoundationEssentials)
import Fetch
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Synchronization
import NIOPosix
import SystemPackage
import Transfer
import Wire

/// Beats to HBS for as long as the agent runs: on start, then when HBS says (long-polling while
/// idle, so a new rollout's order arrives at once), with jitter, and with backoff and the next
/// HBS URL in turn when one does not answer. An order runs in `onOrder` beside the loop, which
/// keeps beating (progress, verified pieces for peers, the lease) and hands the same order sent
/// again (with more peers) to `onOffer`; when `onOrder` returns true (the release is switched)
/// one more beat reports "restarting" and the loop ends. `onAnswered` runs after every answered
/// beat (the new version confirms its health there). With a fleet token, the host enrols first
/// and every beat carries its credential; a beat HBS no longer knows the credential of (an admin
/// forgot the host) enrols again.
public struct HeartbeatLoop: Sendable {
    public let configuration: AgentConfiguration
    public let hostname: String
    public let version: String
    public let peerPort: Int?
    public let status: AgentStatus
    public let logger: Logger
    public let onOrder: @Sendable (UpgradeOrder) async -> Bool
    public let onOffer: @Sendable (UpgradeOrder) -> Void
    public let onAnswered: @Sendable () -> Void
    /// Where the loop promises its next sign of life (the service manager's watchdog reads it).
    public let liveness: Liveness

    public init(
        configuration: AgentConfiguration, hostname: String, version: String, peerPort: Int?, status: AgentStatus,
        logger: Logger, liveness: Liveness = Liveness(), onAnswered: @escaping @Sendable () -> Void = {},
        onOffer: @escaping @Sendable (UpgradeOrder) -> Void = { _ in },
        onOrder: @escaping @Sendable (UpgradeOrder) async -> Bool
    ) {
        self.configuration = configuration
        self.hostname = hostname
        self.version = version
        self.peerPort = peerPort
        self.status = status
        self.logger = logger
        self.onOrder = onOrder
        self.onOffer = onOffer
        self.onAnswered = onAnswered
        self.liveness = liveness
    }

    /// Runs until the task is cancelled, or an order switched the release.
    public func run() async {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        // One kept-alive connection to HBS for every beat, used from that one thread only.
        let connections = CurlConnectionCache()
        defer { thread.shutdownGracefully { _ in } }
        let token = configuration.fleetTokenFile.flatMap { try? Files.read(FilePath($0)) }
            .map { String(decoding: $0, as: UTF8.self).split(whereSeparator: \.isWhitespace).joined() }
        var credential = token == nil ? nil : HostCredential.load(data: configuration.data, hostname: hostname)
        // The credential HBS last refused with 401, until enrolling again settles whether it is gone.
        var refused: HostCredential?
        var index = 0
        var failures = 0
        var ip = configuration.advertiseIP ?? ""
        let wait = Int(configuration.heartbeatSeconds)
        var finishing = false
        var upgrade: UpgradeRun?
        defer { upgrade?.task.cancel() }
        while !Task.isCancelled {
            if let run = upgrade, let switched = run.result {
                upgrade = nil
                finishing = switched
            }
            // The last beat before a restart reports "restarting" and does not wait; nor do
            // beats during an upgrade (they carry its progress).
            // Nor the first: HBS must learn this host's address before it can list it as a peer.
            // Nor those of a release on trial: it commits at the first beat after its window.
            let poll = !(finishing || upgrade != nil || ip.isEmpty || status.current.state == .confirming)
            let url = configuration.hbs[index] + (poll ? "/v1/heartbeat?wait=\(wait)" : "/v1/heartbeat")
            liveness.promise(within: .seconds(wait + 15))
            let body = beatBody(ip: ip)
            do {
                if credential == nil, let token {
                    do {
                        credential = try await enrol(at: configuration.hbs[index], token: token, on: thread)
                    } catch EnrolmentError.nameTaken(_) where refused != nil {
                        // The name is still bound: the refusal was HBS's, not the secret's (it
                        // could not read its store). Beat on with the secret it issued.
                        credential = refused
                        throw EnrolmentError.nameTaken(hostname)
                    }
                    refused = nil
                }
                let headers = credential?.headers ?? []
                let (status, answer, localIP) = try await thread.runIfActive { [caFile = configuration.hbsCA] in
                    let result = try Curl.postJSON(
                        url, body: body, headers: headers, timeoutSeconds: Double(wait) + 10, caFile: caFile, connections: connections)
                    return (result.status, result.body, result.localIP)
                }
                if status == 401, let rejected = credential {
                    // Kept (in memory and in DATA/identity.json) until a new one is issued: a
                    // name still bound means this one is still good.
                    logger.warning("HBS refused this host's credential (an admin forgot it, it was pruned, or HBS cannot read its store now): enrolling again")
                    credential = nil
                    refused = rejected
                }
                guard status == 200, let reply = try? JSONDecoder().decode(HeartbeatReply.self, from: Data(answer)) else {
                    throw TransferError.http("HTTP \(status): \(String(decoding: answer.prefix(200), as: UTF8.self))")
                }
                failures = 0
                self.status.update { $0.beats += 1 }
                if finishing { return }
                onAnswered()
                if let order = reply.order {
                    if upgrade != nil { onOffer(order) } else { upgrade = UpgradeRun(order: order, onOrder) }
                }
                // The first answer tells which address HBS sees this host at: report it at once.
                if configuration.advertiseIP == nil, let localIP, localIP != ip {
                    ip = localIP
                    continue
                }
                let pause = Self.jittered(min(reply.nextBeatSeconds, configuration.heartbeatSeconds))
                liveness.promise(within: pause)
                if let upgrade { await upgrade.wait(upTo: pause) } else { try? await Task.sleep(for: pause) }
            } catch {
                failures += 1
                self.status.update { $0.beatFailures += 1 }
                if finishing { return }  // restarting matters more than saying so
                let backoff = min(30, 0.5 * Double(1 << min(failures, 6)))
                logger.warning("heartbeat to \(configuration.hbs[index]) failed (\(error)); next HBS in \(backoff) s")
                index = (index + 1) % configuration.hbs.count
                let pause = Self.jittered(backoff)
                liveness.promise(within: pause)
                try? await Task.sleep(for: pause)
            }
        }
    }

    /// Enrols this host and keeps its credential.
    private func enrol(at hbs: String, token: String, on thread: NIOThreadPool) async throws -> HostCredential {
        let credential = try await thread.runIfActive { [hostname, caFile = configuration.hbsCA] in
            try HostCredential.enrol(hbs: hbs, hostname: hostname, fleetToken: token, caFile: caFile)
        }
        do { try credential.save(data: configuration.data) } catch {
            logger.error("enrolled, but cannot keep the credential (\(error)): after a restart an admin must DELETE /v1/agents/\(hostname)")
        }
        logger.notice("enrolled with \(hbs) as \(hostname)")
        return credential
    }

    /// This beat's JSON.
    func beatBody(ip: String) -> [UInt8] {
        let now = status.current
        let beat = HeartbeatRequest(
            hostname: hostname, ip: ip, version: version, labels: configuration.labels, state: now.state,
            rolloutId: now.rolloutId, progressBytes: now.progressBytes, downloadedFrom: now.downloadedFrom,
            error: now.error, held: now.held, peerPort: peerPort,
            droppedSources: now.reportedSources.isEmpty ? nil : now.reportedSources, release: now.release,
            startedAt: now.startedAt, starts: now.starts)
        return Array((try? JSONEncoder().encode(beat)) ?? Data())
    }

    /// ±10 %, so a fleet restarted at once does not beat in lockstep.
    static func jittered(_ seconds: Double) -> Duration {
        .milliseconds(Int(max(0, seconds) * 1000 * Double.random(in: 0.9...1.1)))
    }
}

/// An upgrade running beside the heartbeat loop, and how it ended once it has.
final class UpgradeRun: Sendable {
    private struct State {
        var result: Bool?
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    /// The shared state, in a class so the upgrade's task can hold it too.
    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    let task: Task<Void, Never>
    private let shared = Shared()

    init(order: UpgradeOrder, _ body: @escaping @Sendable (UpgradeOrder) async -> Bool) {
        let shared = self.shared
        task = Task {
            let switched = await body(order)
            let waiters = shared.state.withLock { state in
                state.result = switched
                defer { state.waiters = [:] }
                return state.waiters.values
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// True when it switched the release, false when it failed; nil while it runs.
    var result: Bool? { shared.state.withLock { $0.result } }

    /// Sleeps for `pause`, or less if the upgrade ends first (the restart should not wait).
    /// Nothing polls meanwhile: the upgrade's end wakes the waiter.
    func wait(upTo pause: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: pause) }
            group.addTask { await self.ended() }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns once the upgrade has ended, or the calling task is cancelled.
    private func ended() async {
        let shared = self.shared
        let id = shared.state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = shared.state.withLock { state in
                    if state.result != nil || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            shared.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
