import ArgumentParser
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOSSL

/// `fledge-bench hello-server` (hidden): the reference of `fledge-bench hbs`, a hello-world
/// server on the framework fledge-hbs is built on (Hummingbird 2, same HTTP/1 server, same
/// default event loop group), started by the bench as a child process. `GET /` answers
/// "hello"; `POST /v1/heartbeat` reads the whole body and answers the constant JSON an idle
/// host gets from fledge-hbs, so both do the same HTTP work and differ only in what HBS does
/// with the beat (decode, engine, store, encode).
struct HelloServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hello-server",
        abstract: "Hello-world Hummingbird server: the reference of `fledge-bench hbs` (started by it).",
        shouldDisplay: false)

    @Option(help: "HOST:PORT to listen on.")
    var listen: String

    @Option(help: "PEM certificate chain: with --tls-key, serve HTTPS (the reference for fledge-hbs over TLS).")
    var tlsCertificate: String?

    @Option(help: "PEM private key of --tls-certificate.")
    var tlsKey: String?

    /// What fledge-hbs answers a known idle host with no rollout active (sorted keys, as it encodes).
    static let reply = #"{"nextBeatSeconds":60}"#

    func validate() throws {
        guard address != nil else { throw ValidationError("--listen: '\(listen)' is not HOST:PORT") }
    }

    private var address: (host: String, port: Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        return (String(listen[..<colon]), port)
    }

    func run() async throws {
        guard let address else { throw ValidationError("--listen: '\(listen)' is not HOST:PORT") }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "hello-server")
        logger.logLevel = .warning

        let router = Router()
        router.get("/") { _, _ in "hello" }
        router.post("/v1/heartbeat") { request, context in
            _ = try await request.body.collect(upTo: context.maxUploadSize)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: Self.reply)))
        }
        var server = HTTPServerBuilder.http1()
        if let tlsCertificate, let tlsKey {
            let chain = try NIOSSLCertificate.fromPEMFile(tlsCertificate).map { NIOSSLCertificateSource.certificate($0) }
            server = try .tls(server, tlsConfiguration: .makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem))))
        }
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "hello-server"),
            logger: logger)
        try await app.runService()
    }
}
