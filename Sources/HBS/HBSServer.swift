import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOHTTPTypes
import NIOSSL
import Rollouts
import ServiceLifecycle
import SystemPackage
import Transfer

/// `fledge-hbs` put together: the control plane on its store, the agent listener, the admin
/// listener (falcon's API, v1, `/metrics`, `/healthz`) behind the authority check, and the
/// sweeper that lets time expire leases. Runs until SIGTERM or SIGINT.
public struct HBSServer {
    public let configuration: HBSConfiguration
    public let logger: Logger

    public init(configuration: HBSConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let agentAddress = try Self.address(configuration.agentListen, flag: "--agent-listen")
        let adminAddress = try Self.address(configuration.adminListen, flag: "--admin-listen")
        var allowed: [IPNetwork] = []
        for text in configuration.adminAllow {
            guard let network = IPNetwork(text) else { throw HBSStartError("--admin-allow: '\(text)' is not a CIDR network") }
            allowed.append(network)
        }
        let adminToken = try configuration.adminTokenFile.map { try Self.token(from: $0, flag: "--admin-token-file") }
        let givenFleetToken = try configuration.fleetTokenFile.map { try Self.token(from: $0, flag: "--fleet-token-file") }

        let store: any FleetStore
        var redisStore: RedisStore?
        if let url = configuration.redis {
            let client: RedisClient
            do { client = try RedisClient(url: url) } catch { throw HBSStartError("--redis: \(error)") }
            let shared = RedisStore(client: client, logger: logger)
            if !shared.isReachable { logger.warning("redis at \(url) is not reachable yet: answering beats, admitting nobody until it is") }
            store = shared
            redisStore = shared
        } else {
            store = EmbeddedStore(directory: FilePath(configuration.data))
        }
        let fleetToken = try Self.enrolmentToken(given: givenFleetToken, redis: redisStore, data: configuration.data, logger: logger)
        if configuration.anonymousBeats {
            logger.warning("--anonymous-beats: beats carry no credential; anyone who reaches \(configuration.agentListen) can speak for any host")
        }
        let controlPlane = try ControlPlane(store: store, configuration: configuration.engine, logger: logger)
        let metrics = HBSMetrics(redis: redisStore)
        let planner = SourcePlanner(configuration: configuration.engine.planner)

        let agentRouter = Router(context: HBSRequestContext.self)
        AgentRoutes(controlPlane: controlPlane, fleetToken: fleetToken, anonymousBeats: configuration.anonymousBeats,
                    trustAdvertisedAddresses: configuration.trustAdvertisedAddresses, metrics: metrics).register(on: agentRouter)

        let adminRouter = Router(context: HBSRequestContext.self)
        adminRouter.add(middleware: AdminAuthority(allowed: allowed, token: adminToken, publicReads: configuration.publicReads))
        FalconRoutes(controlPlane: controlPlane, agentName: configuration.agentName, maxConcurrent: configuration.maxConcurrent)
            .register(on: adminRouter)
        RolloutRoutes(controlPlane: controlPlane, planner: planner, defaultMaxConcurrent: configuration.maxConcurrent)
            .register(on: adminRouter)
        await controlPlane.observe { _, event in metrics.note(event) }
        adminRouter.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(await controlPlane.state, planner: planner))))
        }
        adminRouter.get("/healthz") { _, _ in JSONResponse.encode(["status": "ok"]) }
        Dashboard().register(on: adminRouter)

        let server = try serverBuilder()
        let agentApp = Application(
            router: agentRouter, server: server, configuration: .init(address: agentAddress, serverName: "fledge-hbs"), logger: logger)
        let adminApp = Application(
            router: adminRouter, server: server, configuration: .init(address: adminAddress, serverName: "fledge-hbs"), logger: logger)
        let services: [any Service] = [agentApp, adminApp, Sweeper(controlPlane: controlPlane, metrics: metrics)]
        let scheme = configuration.tlsCertificate == nil ? "http" : "https"
        logger.info("fledge-hbs: \(scheme), agents on \(configuration.agentListen), admin on \(configuration.adminListen), state \(configuration.redis.map { "in redis \($0)" } ?? "in \(configuration.data)")")
        try await ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }

    /// HTTP/1.1 with the listener hygiene both listeners share (a deadline per request, an idle
    /// timeout), in TLS when a certificate and key are configured.
    func serverBuilder() throws -> HTTPServerBuilder {
        let requestLimit = TimeAmount.seconds(configuration.requestTimeoutSeconds)
        let http1 = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [
                RequestDeadline<HTTPRequestPart, HTTPResponsePart>(
                    limit: requestLimit,
                    isRequestEnd: { if case .end = $0 { true } else { false } },
                    isResponseEnd: { if case .end = $0 { true } else { false } }),
            ],
            idleTimeout: .seconds(configuration.idleTimeoutSeconds)))
        guard let certificate = configuration.tlsCertificate, let key = configuration.tlsKey else { return http1 }
        let tls: TLSConfiguration
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        } catch {
            throw HBSStartError("--tls-certificate \(certificate) / --tls-key \(key): \(error)")
        }
        return try .tls(http1, tlsConfiguration: tls)
    }

    static func address(_ text: String, flag: String) throws -> BindAddress {
        guard let listen = ListenAddress(text) else { throw HBSStartError("\(flag): '\(text)' is not HOST:PORT") }
        return .hostname(listen.host, port: listen.port)
    }

    /// The fleet's enrolment token: the one given, else the one made before (in Redis, shared
    /// by every instance; or in `DATA/fleet-token`, 0600), else a new one saved there.
    static func enrolmentToken(given: String?, redis: RedisStore?, data: String, logger: Logger) throws -> EnrolmentToken {
        if let given { return EnrolmentToken(fixed: given) }
        if let redis {
            let proposed = randomSecret()
            logger.notice("fleet token: made once and kept in redis (\(redis.prefix)fleet-token); hosts enrol with it")
            return EnrolmentToken { try? redis.fleetToken(proposing: proposed) }
        }
        let path = FilePath(data).appending("fleet-token")
        if let bytes = try? Files.read(path) {
            return EnrolmentToken(fixed: String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        do {
            try Files.makeDirectory(FilePath(data))
            try Files.writeAtomically(Array((randomSecret() + "\n").utf8), to: path, mode: 0o600)
        } catch { throw HBSStartError("cannot save a fleet token in \(path): \(error); give one with --fleet-token-file") }
        logger.notice("fleet token: made and saved in \(path) (0600); hosts enrol with it")
        return try EnrolmentToken(fixed: token(from: path.string, flag: "fleet token"))
    }

    static func token(from path: String, flag: String) throws -> String {
        guard let bytes = try? Files.read(FilePath(path)) else { throw HBSStartError("\(flag): cannot read \(path)") }
        let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 16 else { throw HBSStartError("\(flag): the token in \(path) is shorter than 16 characters") }
        return token
    }
}

/// Lets time act: leases, deadlines, retries, completion, once a second.
struct Sweeper: Service {
    let controlPlane: ControlPlane
    let metrics: HBSMetrics

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                let started = ContinuousClock.now
                await controlPlane.sweep()
                metrics.sweepDuration.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            }
        }
    }
}

/// A configuration that cannot start, with the flag to fix.
public struct HBSStartError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
