/// Where an agent is in an upgrade. States only move forward within one rollout.
public enum AgentState: String, Codable, Sendable, CaseIterable, Comparable {
    case idle, downloading, installing, restarting, confirming, failed

    /// Order within an upgrade; `failed` ends it like success does.
    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: AgentState, b: AgentState) -> Bool { a.rank < b.rank }
}

/// A release an agent holds verified and serves to peers from its range server: whole, or
/// (`pieces` given) the verified pieces so far of one still downloading.
public struct HeldRelease: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    /// True when every file is final and verified.
    public var complete: Bool
    /// Verified pieces so far, when not complete.
    public var verifiedPieces: Int?

    public init(name: String, version: String, complete: Bool, verifiedPieces: Int? = nil) {
        self.name = name
        self.version = version
        self.complete = complete
        self.verifiedPieces = verifiedPieces
    }
}

/// What an agent says on every beat: who it is, what it runs, where it is in an upgrade, what
/// it can serve to neighbours.
public struct HeartbeatRequest: Codable, Sendable, Equatable {
    public var hostname: String
    public var ip: String
    /// The agent's own version (what it runs now).
    public var version: String
    public var labels: [String: String]
    public var state: AgentState
    /// The rollout the state is about, when upgrading.
    public var rolloutId: String?
    public var progressBytes: Int64?
    /// Bytes fetched in the current upgrade, by source base URL.
    public var downloadedFrom: [String: Int64]?
    /// Why it failed, when `state` is `failed` (or what it rolled back from).
    public var error: String?
    public var held: [HeldRelease]
    /// Port of its range server, when it serves peers.
    public var peerPort: Int?
    /// Sources its current download gave up on (too slow, lying, broken, corrupt), with why:
    /// HBS stops handing them to this host, and to every host once several report one.
    public var droppedSources: [SourceFailure]?
    /// The release it runs (`DATA/current`), when that is not `version`: a falcon config-only
    /// upgrade changes the release and keeps the binary's version.
    public var release: String?
    /// Unix seconds this agent process started: a start time that keeps moving is a host that
    /// keeps restarting.
    public var startedAt: Int64?
    /// Starts of this version on this host so far.
    public var starts: Int?

    public init(
        hostname: String, ip: String, version: String, labels: [String: String] = [:], state: AgentState = .idle,
        rolloutId: String? = nil, progressBytes: Int64? = nil, downloadedFrom: [String: Int64]? = nil,
        error: String? = nil, held: [HeldRelease] = [], peerPort: Int? = nil, droppedSources: [SourceFailure]? = nil,
        release: String? = nil, startedAt: Int64? = nil, starts: Int? = nil
    ) {
        self.hostname = hostname
        self.ip = ip
        self.version = version
        self.labels = labels
        self.state = state
        self.rolloutId = rolloutId
        self.progressBytes = progressBytes
        self.downloadedFrom = downloadedFrom
        self.error = error
        self.held = held
        self.peerPort = peerPort
        self.droppedSources = droppedSources
        self.release = release
        self.startedAt = startedAt
        self.starts = starts
    }
}

/// How an agent gets a release: a signed Fledge manifest, or falcon's one file and its md5.
public enum ReleaseLocator: Codable, Sendable, Equatable {
    /// A signed Fledge release: its manifest from `manifestURL` when given, else from
    /// `{source}/{name}/{version}/manifest.json` on the order's sources; verified against
    /// the agent's pinned keys either way.
    case fledge(manifestURL: String?)
    /// `{wgeturl}/bin_{version}` (and `cfg_{version}`), checked by md5. `type`: 0 binary, 1 config, 2 both.
    case falcon(wgetURL: String, type: Int, binMD5: String, cfgMD5: String)
}

/// The upgrade HBS orders in a heartbeat reply.
public struct UpgradeOrder: Codable, Sendable, Equatable {
    public var rolloutId: String
    public var name: String
    public var version: String
    public var locator: ReleaseLocator
    /// Base URLs to fetch from, best first: CDNs and peers chosen by the source planner. In a
    /// swarm, re-sent while the host downloads, with more peers.
    public var sources: [String]
    /// Origins to ask only for pieces no source above has offered for a while: in a swarm
    /// most hosts get the CDN only as a last resort, so the origin sends each piece about once.
    public var fallbackSources: [String]?
    /// Unix seconds by which the host must have confirmed the new version.
    public var deadline: Int64
    /// Set for rollbacks: the one case where an older version is ordered on purpose.
    public var allowsDowngrade: Bool?
    /// For a host fetching from a CDN first (a seed of a swarm): the share of the release it
    /// fetches first, so seeds start on different pieces.
    public var seedShare: SeedShare?

    public init(
        rolloutId: String, name: String, version: String, locator: ReleaseLocator, sources: [String], deadline: Int64,
        allowsDowngrade: Bool? = nil, fallbackSources: [String]? = nil, seedShare: SeedShare? = nil
    ) {
        self.rolloutId = rolloutId
        self.name = name
        self.version = version
        self.locator = locator
        self.sources = sources
        self.fallbackSources = fallbackSources
        self.deadline = deadline
        self.allowsDowngrade = allowsDowngrade
        self.seedShare = seedShare
    }
}

/// HBS's answer to a beat.
public struct HeartbeatReply: Codable, Sendable, Equatable {
    public var order: UpgradeOrder?
    /// When to beat next: short while a rollout is active or the host upgrades, long when idle.
    public var nextBeatSeconds: Double

    public init(order: UpgradeOrder? = nil, nextBeatSeconds: Double) {
        self.order = order
        self.nextBeatSeconds = nextBeatSeconds
    }
}
