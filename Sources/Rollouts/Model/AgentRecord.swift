import Wire

/// What HBS knows of an agent from its last beat.
public struct AgentRecord: Codable, Sendable, Equatable {
    public var hostname: String
    public var ip: String
    public var version: String
    public var labels: [String: String]
    public var state: AgentState
    public var lastSeen: Int64
    public var held: [HeldRelease]
    public var peerPort: Int?
    public var error: String?
    /// The release it runs when not its binary's version (a falcon config-only upgrade).
    public var release: String?
    /// When its agent process started (unix seconds), and starts of its version so far: a
    /// host that keeps restarting shows here even while each start answers a beat or two.
    public var startedAt: Int64?
    public var starts: Int?

    public init(_ beat: HeartbeatRequest, now: Int64) {
        hostname = beat.hostname
        ip = beat.ip
        version = beat.version
        labels = beat.labels
        state = beat.state
        lastSeen = now
        held = beat.held
        peerPort = beat.peerPort
        error = beat.error
        release = beat.release
        startedAt = beat.startedAt
        starts = beat.starts
    }

    /// Whether it runs `version`: its binary's version, or the release it runs.
    func runs(_ version: String) -> Bool {
        RolloutEngine.same(self.version, version) || release.map { RolloutEngine.same($0, version) } == true
    }

    /// The peer base URL, when it serves (and its address is known).
    var peerURL: String? {
        guard !ip.isEmpty else { return nil }
        return peerPort.map { "http://\(ip.contains(":") ? "[\(ip)]" : ip):\($0)" }
    }
}

extension AgentRecord {
    /// Same host, address, version (and release), process, labels, peer port and held releases: only the beat's
    /// time and state differ (a download's growing piece count is no news, its first piece is).
    public func sameIdentity(as other: AgentRecord) -> Bool {
        ip == other.ip && version == other.version && labels == other.labels && peerPort == other.peerPort
            && release == other.release && startedAt == other.startedAt
            && held.map(\.servingKey) == other.held.map(\.servingKey)
    }
}

extension HeldRelease {
    /// What a peer can serve of it: whole, some pieces, or nothing yet.
    var servingKey: String { "\(name)/\(version)/\(complete ? "whole" : (verifiedPieces ?? 0) > 0 ? "pieces" : "none")" }
}
