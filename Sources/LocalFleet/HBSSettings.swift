import Foundation

/// The `--config` file the fleet's `fledge-hbs` starts with: the engine's fast beat and the
/// source planner's settings (`{"engine":{"fastBeatSeconds":...,"planner":{...}}}`). Data
/// directory and listen addresses are given as flags.
enum HBSSettings {
    /// Writes the config for `plan` to `path`.
    static func write(_ plan: FleetPlan, to path: String) throws {
        var planner: [String: Any] = ["pieceRelay": plan.pieceRelay]
        // CDN slots are capacity / downlink: the downlink must be the agents' real one.
        if let down = plan.agentDownloadBytesPerSecond { planner["hostDownlinkMbps"] = FleetPlan.megabits(down) }
        if let fanout = plan.peerFanout { planner["peerFanout"] = fanout }
        if let seeds = plan.cdnSeeds { planner["cdnSeeds"] = seeds }
        if let peers = plan.swarmPeers { planner["swarmPeers"] = peers }
        let config: [String: Any] = ["engine": ["fastBeatSeconds": plan.fastBeatSeconds, "planner": planner]]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted])
            .write(to: URL(fileURLWithPath: path))
    }
}
