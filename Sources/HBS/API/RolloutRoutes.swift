import Hummingbird
import Rollouts
import Transfer
import Wire

/// The v1 admin API: rollouts with canary, batches, pause, resume, abort, rollback and
/// progress; and the agents as last seen.
struct RolloutRoutes {
    let controlPlane: ControlPlane
    let planner: SourcePlanner
    let defaultMaxConcurrent: Int

    func register(on router: Router<HBSRequestContext>) {
        router.post("/v1/rollouts") { request, context in await create(request, context) }
        router.get("/v1/rollouts") { _, _ in
            let state = await controlPlane.state
            let now = UnixTime.now
            return JSONResponse.encode(state.rollouts.values.sorted { $0.createdAt < $1.createdAt }
                .map { RolloutSummary($0, planner: planner, now: now) })
        }
        router.get("/v1/rollouts/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let rollout = await controlPlane.state.rollouts[id] else {
                return JSONResponse.error(.notFound, "no rollout '\(id)'")
            }
            return JSONResponse.encode(RolloutSummary(rollout, planner: planner, now: UnixTime.now))
        }
        router.post("/v1/rollouts/:id/:action") { _, context in
            await act(
                id: context.parameters.get("id") ?? "", action: context.parameters.get("action") ?? "",
                by: context.remoteAddress.flatMap(AgentRoutes.ip) ?? "an operator")
        }
        // The same path shape as the actions (the router's trie would let a constant `events`
        // shadow `:action` for every other word).
        router.get("/v1/rollouts/:id/:action") { request, context in
            guard context.parameters.get("action") == "events" else {
                return JSONResponse.error(.notFound, "no '\(context.parameters.get("action") ?? "")' here: GET /v1/rollouts/ID/events")
            }
            return await RolloutEventStream(controlPlane: controlPlane).respond(to: request, id: context.parameters.get("id") ?? "")
        }
        router.get("/v1/agents") { _, _ in
            JSONResponse.encode(await controlPlane.state.agents.values.sorted { $0.hostname < $1.hostname }.map(AgentView.init))
        }
        // Forgets a host and its credential: the one way to bind its name anew (a reinstalled
        // machine, a lost secret).
        router.delete("/v1/agents/:name") { _, context in
            await forget(context.parameters.get("name") ?? "", by: context.remoteAddress.flatMap(AgentRoutes.ip) ?? "an admin")
        }
    }

    private func forget(_ name: String, by who: String) async -> Response {
        do {
            try await controlPlane.forget(host: name, by: who)
            return Response(status: .noContent)
        } catch .engine(.notFound) {
            return JSONResponse.error(.notFound, "no agent '\(name)'")
        } catch {
            return JSONResponse.error(.serviceUnavailable, error.description)
        }
    }

    private func create(_ request: Request, _ context: HBSRequestContext) async -> Response {
        let body: RolloutRequest
        switch await JSONResponse.decode(RolloutRequest.self, from: request, context: context) {
        case .success(let decoded): body = decoded
        case .failure(let failure): return JSONResponse.error(failure.status, failure.message)
        }
        let spec: RolloutSpec
        do { spec = try body.spec(defaultMaxConcurrent: defaultMaxConcurrent) } catch {
            return JSONResponse.error(.badRequest, error.description, field: error.field)
        }
        return await respond(status: .created) { () throws(ControlPlaneError) in try await controlPlane.create(spec) }
    }

    private func act(id: String, action: String, by who: String) async -> Response {
        switch action {
        case "pause": await respond { () throws(ControlPlaneError) in try await controlPlane.pause(id, by: who) }
        case "resume": await respond { () throws(ControlPlaneError) in try await controlPlane.resume(id, by: who) }
        case "abort": await respond { () throws(ControlPlaneError) in try await controlPlane.abort(id, by: who) }
        case "rollback": await respond { () throws(ControlPlaneError) in try await controlPlane.rollback(id) }
        default: JSONResponse.error(.notFound, "no action '\(action)': use pause, resume, abort or rollback")
        }
    }

    private func respond(
        status: HTTPResponse.Status = .ok, _ body: () async throws(ControlPlaneError) -> Rollout
    ) async -> Response {
        do {
            let rollout = try await body()
            return JSONResponse.encode(RolloutSummary(rollout, planner: planner, now: UnixTime.now), status: status)
        } catch .engine(.invalid(let error)) {
            return JSONResponse.error(.badRequest, error.description, field: error.field)
        } catch .engine(.notFound(let id)) {
            return JSONResponse.error(.notFound, "no rollout '\(id)'")
        } catch .engine(.conflict(let reason)) {
            return JSONResponse.error(.conflict, reason)
        } catch {
            return JSONResponse.error(.serviceUnavailable, error.description)
        }
    }
}

/// An agent as `GET /v1/agents` shows it.
struct AgentView: Codable {
    var host: String
    var ip: String
    var labels: [String: String]
    var version: String
    var state: String
    var release: String?
    var lastSeen: Int64
    var error: String?
    /// When its agent process started, and starts of its version: a crash loop shows here.
    var startedAt: Int64?
    var starts: Int?

    init(_ agent: AgentRecord) {
        host = agent.hostname
        ip = agent.ip
        labels = agent.labels
        version = agent.version
        state = agent.state.rawValue
        release = agent.release
        lastSeen = agent.lastSeen
        error = agent.error
        startedAt = agent.startedAt
        starts = agent.starts
    }
}
