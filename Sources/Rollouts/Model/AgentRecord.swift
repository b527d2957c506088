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

    init(_ beat: HeartbeatRequest, now: Int64) {
        hostname = beat.hostname
        ip = beat.ip
        version = beat.version
        labels = beat.labels
        state = beat.state
        lastSeen = now
        held = beat.held
        peerPort = beat.peerPort
        error = beat.error
    }

    /// The peer base URL, when it serves (and its address is known).
    var peerURL: String? {
        guard !ip.isEmpty else { return nil }
        return peerPort.map { "http://\(ip.contains(":") ? "[\(ip)]" : ip):\($0)" }
    }
}

extension AgentRecord {
    /// Same host, address, version, labels, peer port and held releases: only the beat's
    /// time and state differ (a download's growing piece count is no news, its first piece is).
    func sameIdentity(as other: AgentRecord) -> Bool {
        ip == other.ip && version == other.version && labels == other.labels && peerPort == other.peerPort
            && held.map(\.servingKey) == other.held.map(\.servingKey)
    }
}

extension HeldRelease {
    /// What a peer can serve of it: whole, some pieces, or nothing yet.
    var servingKey: String { "\(name)/\(version)/\(complete ? "whole" : (verifiedPieces ?? 0) > 0 ? "pieces" : "none")" }
}
