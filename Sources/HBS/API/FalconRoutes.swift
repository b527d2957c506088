import Hummingbird
import Rollouts
import Wire

/// falcon-plus' admin API, unchanged for its users' scripts: `POST /agent/upgrade` turns the
/// upgrade on (a rollout to every older agent, one URL, md5), `GET /agent/upgrade/nowargs`
/// shows it, `DELETE /agent/upgrade` turns it off, `GET /agentversions` lists hosts' versions.
struct FalconRoutes {
    let controlPlane: ControlPlane
    let agentName: String
    let maxConcurrent: Int

    /// The body of `POST /agent/upgrade`, and of `nowargs`' data.
    struct UpgradeArgs: Codable, Sendable {
        var type: Int?
        var wgeturl: String?
        var version: String?
        var binfile_md5: String?
        var cfgfile_md5: String?
    }

    func register(on router: Router<HBSRequestContext>) {
        router.post("/agent/upgrade") { request, context in await start(request, context) }
        router.get("/agent/upgrade/nowargs") { _, _ in await nowArgs() }
        router.delete("/agent/upgrade") { _, _ in await cancel() }
        router.get("/agentversions") { _, _ in
            JSONResponse.falcon(await controlPlane.state.agents.mapValues(\.version))
        }
    }

    private func start(_ request: Request, _ context: HBSRequestContext) async -> Response {
        let args: UpgradeArgs
        switch await JSONResponse.decode(UpgradeArgs.self, from: request, context: context) {
        case .success(let decoded): args = decoded
        case .failure(let failure): return JSONResponse.falconError(failure.status, failure.message)
        }
        let type = args.type ?? 0
        guard (0...2).contains(type) else { return JSONResponse.falconError(.badRequest, "type must be 0 (binary), 1 (config) or 2 (both), got \(type)") }
        guard let wgeturl = args.wgeturl, !wgeturl.isEmpty else { return JSONResponse.falconError(.badRequest, "missing wgeturl") }
        guard let version = args.version, !version.isEmpty else { return JSONResponse.falconError(.badRequest, "missing version") }
        let bin = args.binfile_md5 ?? "", cfg = args.cfgfile_md5 ?? ""
        if type != 1 && bin.isEmpty { return JSONResponse.falconError(.badRequest, "missing binfile_md5 (type \(type) upgrades the binary)") }
        if type != 0 && cfg.isEmpty { return JSONResponse.falconError(.badRequest, "missing cfgfile_md5 (type \(type) upgrades the config)") }

        let spec = RolloutSpec(
            name: agentName, version: version, locator: .falcon(wgetURL: wgeturl, type: type, binMD5: bin.lowercased(), cfgMD5: cfg.lowercased()),
            sources: [CDNSource(url: wgeturl, capacityMbps: 10_000)], maxConcurrent: maxConcurrent,
            failureBudget: Int(Int32.max), peersMayServe: false)
        do {
            // falcon replaces the switch's arguments; a running falcon rollout gives way.
            let rollout = try await controlPlane.replaceFalcon(spec)
            return JSONResponse.falcon(Self.args(of: rollout))
        } catch .engine(.invalid(let error)) {
            return JSONResponse.falconError(.badRequest, error.description)
        } catch .engine(.conflict(let reason)) {
            return JSONResponse.falconError(.conflict, reason)
        } catch {
            return JSONResponse.falconError(.serviceUnavailable, error.description)
        }
    }

    private func nowArgs() async -> Response {
        guard let rollout = await controlPlane.state.activeRollout, rollout.spec.isFalcon else {
            return JSONResponse.falcon(UpgradeArgs(type: 0, wgeturl: "", version: "", binfile_md5: "", cfgfile_md5: ""))
        }
        return JSONResponse.falcon(Self.args(of: rollout))
    }

    private func cancel() async -> Response {
        guard let rollout = await controlPlane.state.activeRollout, rollout.spec.isFalcon else {
            return JSONResponse.falcon(Self.cancelled)
        }
        do {
            _ = try await controlPlane.abort(rollout.id)
            return JSONResponse.falcon(Self.cancelled)
        } catch {
            return JSONResponse.falconError(.serviceUnavailable, error.description)
        }
    }

    /// falcon's answer to DELETE, to the byte: "upgrade cancelled successfully".
    static let cancelled = "取消升级成功"

    static func args(of rollout: Rollout) -> UpgradeArgs {
        guard case .falcon(let url, let type, let bin, let cfg) = rollout.spec.locator else { return UpgradeArgs() }
        return UpgradeArgs(type: type, wgeturl: url, version: rollout.spec.version, binfile_md5: bin, cfgfile_md5: cfg)
    }
}
