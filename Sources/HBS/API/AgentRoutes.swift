import Hummingbird
import Transfer
import Wire

/// The agent listener: `POST /v1/heartbeat`, optionally behind a fleet token.
struct AgentRoutes {
    let controlPlane: ControlPlane
    let fleetToken: String?
    let metrics: HBSMetrics

    func register(on router: Router<HBSRequestContext>) {
        router.post("/v1/heartbeat") { request, context in await heartbeat(request, context) }
        router.get("/healthz") { _, _ in JSONResponse.encode(["status": "ok"]) }
    }

    private func heartbeat(_ request: Request, _ context: HBSRequestContext) async -> Response {
        if let fleetToken, !AdminAuthority.presents(fleetToken, request) {
            return JSONResponse.error(.unauthorized, "a fleet token is required: Authorization: Bearer TOKEN")
        }
        let beat: HeartbeatRequest
        switch await JSONResponse.decode(HeartbeatRequest.self, from: request, context: context) {
        case .success(let decoded): beat = decoded
        case .failure(let failure): return JSONResponse.error(failure.status, failure.message)
        }
        guard !beat.hostname.isEmpty, beat.hostname.utf8.count <= 255 else {
            return JSONResponse.error(.badRequest, "hostname must be 1-255 bytes", field: "hostname")
        }
        guard !beat.version.isEmpty else { return JSONResponse.error(.badRequest, "version is required", field: "version") }
        metrics.heartbeats.add(1, ordering: .relaxed)
        var (reply, stored) = await controlPlane.beat(beat)
        // Long-poll: `?wait=S` holds a beat with nothing to do for up to S seconds, answering at
        // once when a rollout starts; so an idle fleet beats once a minute yet gets its orders
        // within moments. After a wait the next beat is due at once.
        if let wait = Self.waitSeconds(request), reply.order == nil, reply.nextBeatSeconds > 1 {
            if await controlPlane.signal.wait(upTo: .seconds(wait)) {
                (reply, stored) = await controlPlane.beat(beat)
            } else {
                reply.nextBeatSeconds = 0
            }
        }
        if !stored { metrics.storeErrors.add(1, ordering: .relaxed) }
        if reply.order != nil { metrics.orders.add(1, ordering: .relaxed) }
        return JSONResponse.encode(reply)
    }

    /// The `wait` query parameter, in seconds (at most 120), if any.
    static func waitSeconds(_ request: Request) -> Double? {
        guard let text = request.uri.queryParameters.get("wait"), let seconds = Double(text), seconds > 0 else { return nil }
        return min(seconds, 120)
    }
}
