import HTTPTypes
import Hummingbird
import NIOCore
import Transfer
import Wire

/// The agent listener: `POST /v1/enrol` (a host's one-time binding, with the fleet token) and
/// `POST /v1/heartbeat`, each beat authenticated as the host it names (`HostIdentity`) unless
/// HBS runs with anonymous beats.
struct AgentRoutes {
    let controlPlane: ControlPlane
    let fleetToken: EnrolmentToken
    /// Beats need no credential (a lab).
    let anonymousBeats: Bool
    /// Believe a beat's advertised address instead of the connection's.
    let trustAdvertisedAddresses: Bool
    let metrics: HBSMetrics

    func register(on router: Router<HBSRequestContext>) {
        router.post("/v1/enrol") { request, context in await enrol(request, context) }
        router.post("/v1/heartbeat") { request, context in await heartbeat(request, context) }
        router.get("/healthz") { _, _ in JSONResponse.encode(["status": "ok"]) }
    }

    /// A host asks for its secret, presenting the fleet's enrolment token: a fresh 256-bit
    /// secret, bound to its name (its SHA-256 stored), shown this once.
    private func enrol(_ request: Request, _ context: HBSRequestContext) async -> Response {
        guard let token = fleetToken.current else {
            return JSONResponse.error(.serviceUnavailable, "the fleet token cannot be read now (is redis reachable?); try again")
        }
        guard AdminAuthority.presents(token, request) else {
            return JSONResponse.error(.unauthorized, "enrolment needs the fleet token: Authorization: Bearer FLEET-TOKEN")
        }
        let enrolment: EnrolRequest
        switch await JSONResponse.decode(EnrolRequest.self, from: request, context: context) {
        case .success(let decoded): enrolment = decoded
        case .failure(let failure): return JSONResponse.error(failure.status, failure.message)
        }
        guard Self.isHostname(enrolment.hostname) else {
            return JSONResponse.error(.badRequest, "hostname must be 1-255 bytes of letters, digits and .-_", field: "hostname")
        }
        let secret = randomSecret()
        do {
            try await controlPlane.enrol(host: enrolment.hostname, digest: CredentialDigest(ofSecret: secret))
        } catch .engine(.conflict(let reason)) {
            return JSONResponse.error(.conflict, reason)
        } catch {
            return JSONResponse.error(.serviceUnavailable, "cannot store the enrolment now: \(error)")
        }
        return JSONResponse.encode(EnrolReply(hostname: enrolment.hostname, secret: secret), status: .created)
    }

    private func heartbeat(_ request: Request, _ context: HBSRequestContext) async -> Response {
        // Who speaks: a beat without a credential is refused before its body is read; one whose
        // credential is not its host's changes nothing (the control plane checks it in the same
        // turn that would take the beat).
        var credential: CredentialDigest?
        var speaker: String?
        if !anonymousBeats {
            guard let host = request.headers[Self.hostHeader], let secret = Self.bearer(request) else {
                return JSONResponse.error(.unauthorized, "a beat names its host (\(HostIdentity.hostHeader)) and carries its secret (Authorization: Bearer SECRET); enrol first: POST /v1/enrol with the fleet token")
            }
            (speaker, credential) = (host, CredentialDigest(ofSecret: secret))
        }
        var beat: HeartbeatRequest
        switch await JSONResponse.decode(HeartbeatRequest.self, from: request, context: context) {
        case .success(let decoded): beat = decoded
        case .failure(let failure): return JSONResponse.error(failure.status, failure.message)
        }
        guard !beat.hostname.isEmpty, beat.hostname.utf8.count <= 255 else {
            return JSONResponse.error(.badRequest, "hostname must be 1-255 bytes", field: "hostname")
        }
        if let speaker, speaker != beat.hostname {
            metrics.rejectedBeats.increment()
            return JSONResponse.error(.forbidden, "this beat's \(HostIdentity.hostHeader) is \(speaker): a beat speaks only for its own host, not \(beat.hostname)")
        }
        guard !beat.version.isEmpty else { return JSONResponse.error(.badRequest, "version is required", field: "version") }
        // Peers reach a host where HBS saw it come from, not where it says it is.
        if !trustAdvertisedAddresses, let address = context.remoteAddress.flatMap(Self.ip) { beat.ip = address }
        var reply: HeartbeatReply, stored: Bool
        let started = ContinuousClock.now
        let heard = controlPlane.signal.generation  // a rollout started after this wakes the wait below at once
        do {
            (reply, stored) = try await controlPlane.beat(beat, credential: credential)
            metrics.beatLatency.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
        } catch {
            switch error {
            case .notEnrolled:
                return JSONResponse.error(.unauthorized, "\(beat.hostname) is not enrolled: POST /v1/enrol with the fleet token")
            case .wrongSecret:
                metrics.rejectedBeats.increment()
                return JSONResponse.error(.unauthorized, "wrong credential for \(beat.hostname)")
            }
        }
        metrics.heartbeats.increment()
        // Long-poll: `?wait=S` holds a beat with nothing to do (the engine gave it the idle
        // interval) for up to S seconds, answering at once when a rollout starts or resumes; so
        // an idle fleet beats once a minute yet gets its orders within moments. After a wait the
        // next beat is due at once. Hosts waiting for a slot beat at their paced interval instead.
        if let wait = Self.waitSeconds(request), reply.order == nil, reply.nextBeatSeconds >= controlPlane.idleBeatSeconds {
            if await controlPlane.signal.wait(upTo: .seconds(wait), host: beat.hostname, since: heard) {
                guard let again = try? await controlPlane.beat(beat, credential: credential) else {
                    return JSONResponse.error(.unauthorized, "\(beat.hostname)'s credential was withdrawn while its beat waited; enrol again")
                }
                (reply, stored) = again
            } else {
                reply.nextBeatSeconds = 0
            }
        }
        if !stored { metrics.storeErrors.increment() }
        if reply.order != nil { metrics.orders.increment() }
        return JSONResponse.encode(reply)
    }

    private static let hostHeader = HTTPField.Name(HostIdentity.hostHeader)!

    /// The `wait` query parameter, in seconds (at most 120), if any.
    static func waitSeconds(_ request: Request) -> Double? {
        guard let text = request.uri.queryParameters.get("wait"), let seconds = Double(text), seconds > 0 else { return nil }
        return min(seconds, 120)
    }

    /// `Authorization: Bearer X`'s X.
    static func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        return String(header.dropFirst(7))
    }

    /// A connection's IP as a beat's `ip` spells it (an IPv4 peer of a dual-stack socket shows
    /// as `::ffff:a.b.c.d`: its IPv4 address).
    static func ip(_ address: SocketAddress) -> String? {
        guard let text = address.ipAddress else { return nil }
        return text.hasPrefix("::ffff:") && text.contains(".") ? String(text.dropFirst(7)) : text
    }

    /// Names a host may enrol as: what DNS allows, and `_`.
    static func isHostname(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                true
            default: false
            }
        }
    }
}
