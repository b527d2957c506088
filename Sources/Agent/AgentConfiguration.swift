#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Swarm
import Transfer
import Wire

/// What an agent is told in its JSON config file. Every key but `hbs`, `data` and `trustedKeys`
/// has a default; `validate()` says exactly what is wrong.
public struct AgentConfiguration: Codable, Sendable, Equatable {
    /// Agent listener URLs of HBS (`http://hbs:6030`), tried in turn.
    public var hbs: [String]
    /// Defaults to the host's name.
    public var hostname: String?
    public var labels: [String: String] = [:]
    /// Where releases, the piece store and the upgrade state live.
    public var data: String
    /// PEM public keys of the release signers this agent trusts.
    public var trustedKeys: [String]
    /// Valid signatures by distinct trusted keys a release needs (2 of 3 keys: one can be lost
    /// or rotated without any single key being trusted alone).
    public var signatureThreshold: Int = 1
    /// Whether falcon's md5-only orders (`{wgeturl}/bin_{version}`, no signature) are carried
    /// out. Off by default: only signed releases run. Even on, a falcon config never replaces
    /// what keeps the host safe (trusted keys, HBS list, this switch).
    public var allowFalcon: Bool = false
    /// The release name this agent is published as (its floor reads that release's manifests).
    public var releaseName: String = "fledge-agent"
    /// Where peers fetch verified pieces from this host (`HOST:PORT`); nil: serve none.
    public var peerListen: String?
    /// The address peers reach this host at (default: the HBS-facing address it reports).
    public var advertiseIP: String?
    public var peerUploadBytesPerSecond: Int64?
    /// Connections the peer server takes at once: each host fetching from this one keeps an
    /// availability stream open, besides its piece requests.
    public var peerMaxConnections: Int = 256
    /// Pieces sent to peers at once; one more per slot waits, others are told when to come
    /// back (429). Few fast uploads let a swarm relay each piece sooner than many slow ones.
    public var peerUploadSlots: Int = SwarmPolicy.default.uploadSlots
    public var downloadBytesPerSecond: Int64?
    /// Seconds without a verified piece from its sources before a download asks the order's
    /// fallback (the CDN).
    public var fallbackPatienceSeconds: Double = SwarmPolicy.default.fallbackPatience
    /// Pieces asked of one source at once: a peer's uplink is shared by all it serves.
    public var piecesPerSource: Int = SwarmPolicy.default.maxPerSource
    /// Pieces in flight at once over all sources.
    public var piecesInFlight: Int = SwarmPolicy.default.maxInFlight
    /// Requests for pieces the peer server queues per upload slot (started the moment the slot
    /// frees); the rest are told when to come back.
    public var peerUploadQueue: Int = SwarmPolicy.default.uploadQueue
    /// Where `/metrics` is served (`HOST:PORT`); nil: nowhere.
    public var metricsListen: String?
    /// Longest pause between beats; HBS asks for shorter ones while a rollout runs.
    public var heartbeatSeconds: Double = 60
    /// File with the fleet's enrolment token: presented once, to get the secret this host
    /// beats with (kept in `DATA/identity.json`, 0600). Without one, beats carry no
    /// credential (HBS must run with anonymous beats).
    public var fleetTokenFile: String?
    /// PEM file of the CAs HBS's certificate must chain to, for `https://` HBS URLs (default:
    /// the system's). `http://` URLs are plain, as configured.
    public var hbsCA: String?
    /// Where a release's unit file is installed (default, where systemd runs:
    /// /etc/systemd/system/fledge-agent.service). `scripts/supervise` reads it from there too.
    public var unitPath: String?
    /// How long a new release must stay healthy (beats answered, its probe passing) before it
    /// commits; a crash, hang or failed probe before then rolls it back.
    public var commitSeconds: Double = 180
    /// A check the release declares that must pass through its commit window.
    public var healthProbe: HealthProbe?

    /// The swarm policy this agent downloads with: the defaults, and what its config changes.
    public var swarmPolicy: SwarmPolicy {
        var policy = SwarmPolicy.default
        policy.maxPerSource = piecesPerSource
        policy.maxInFlight = piecesInFlight
        policy.uploadQueue = peerUploadQueue
        policy.fallbackPatience = fallbackPatienceSeconds
        policy.uploadSlots = peerUploadSlots
        return policy
    }

    public init(hbs: [String], data: String, trustedKeys: [String]) {
        self.hbs = hbs
        self.data = data
        self.trustedKeys = trustedKeys
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hbs = try container.decode([String].self, forKey: .hbs)
        hostname = try container.decodeIfPresent(String.self, forKey: .hostname)
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        data = try container.decode(String.self, forKey: .data)
        trustedKeys = try container.decode([String].self, forKey: .trustedKeys)
        signatureThreshold = try container.decodeIfPresent(Int.self, forKey: .signatureThreshold) ?? signatureThreshold
        allowFalcon = try container.decodeIfPresent(Bool.self, forKey: .allowFalcon) ?? allowFalcon
        releaseName = try container.decodeIfPresent(String.self, forKey: .releaseName) ?? releaseName
        peerListen = try container.decodeIfPresent(String.self, forKey: .peerListen)
        advertiseIP = try container.decodeIfPresent(String.self, forKey: .advertiseIP)
        peerUploadBytesPerSecond = try container.decodeIfPresent(Int64.self, forKey: .peerUploadBytesPerSecond)
        peerMaxConnections = try container.decodeIfPresent(Int.self, forKey: .peerMaxConnections) ?? peerMaxConnections
        peerUploadSlots = try container.decodeIfPresent(Int.self, forKey: .peerUploadSlots) ?? peerUploadSlots
        downloadBytesPerSecond = try container.decodeIfPresent(Int64.self, forKey: .downloadBytesPerSecond)
        fallbackPatienceSeconds = try container.decodeIfPresent(Double.self, forKey: .fallbackPatienceSeconds) ?? fallbackPatienceSeconds
        piecesPerSource = try container.decodeIfPresent(Int.self, forKey: .piecesPerSource) ?? piecesPerSource
        piecesInFlight = try container.decodeIfPresent(Int.self, forKey: .piecesInFlight) ?? piecesInFlight
        peerUploadQueue = try container.decodeIfPresent(Int.self, forKey: .peerUploadQueue) ?? peerUploadQueue
        metricsListen = try container.decodeIfPresent(String.self, forKey: .metricsListen)
        heartbeatSeconds = try container.decodeIfPresent(Double.self, forKey: .heartbeatSeconds) ?? 60
        fleetTokenFile = try container.decodeIfPresent(String.self, forKey: .fleetTokenFile)
        hbsCA = try container.decodeIfPresent(String.self, forKey: .hbsCA)
        unitPath = try container.decodeIfPresent(String.self, forKey: .unitPath)
        commitSeconds = try container.decodeIfPresent(Double.self, forKey: .commitSeconds) ?? commitSeconds
        healthProbe = try container.decodeIfPresent(HealthProbe.self, forKey: .healthProbe)
    }

    /// Keys a falcon config (md5-only, unsigned) may never change: what decides which releases
    /// run, which HBS is obeyed, and how a new release is judged (its window, its probe: a
    /// command the agent runs). The running config's values are kept.
    public static let protectedKeys = [
        "hbs", "trustedKeys", "signatureThreshold", "allowFalcon", "hbsCA", "fleetTokenFile", "data", "releaseName",
        "commitSeconds", "healthProbe", "unitPath",
    ]

    /// Reads and validates a config file.
    public static func load(_ path: String) throws(AgentConfigError) -> AgentConfiguration {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw .unreadable(path, "\(error)") }
        let configuration: AgentConfiguration
        do { configuration = try JSONDecoder().decode(AgentConfiguration.self, from: data) } catch let error as DecodingError {
            throw .invalid(Self.describe(error))
        } catch {
            throw .invalid("\(error)")
        }
        try configuration.validate()
        return configuration
    }

    public func validate() throws(AgentConfigError) {
        guard !hbs.isEmpty else { throw .invalid("hbs: give at least one HBS URL") }
        for (index, url) in hbs.enumerated() where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw .invalid("hbs[\(index)]: '\(url)' is not an http(s) URL")
        }
        guard !data.isEmpty, data.hasPrefix("/") else { throw .invalid("data: must be an absolute directory, is '\(data)'") }
        guard !trustedKeys.isEmpty else { throw .invalid("trustedKeys: pin at least one release key") }
        guard (1...trustedKeys.count).contains(signatureThreshold) else {
            throw .invalid("signatureThreshold: must be 1-\(trustedKeys.count) (the trusted keys), is \(signatureThreshold)")
        }
        guard ReleaseName.isValid(releaseName) else { throw .invalid("releaseName: '\(releaseName)' is not a release name") }
        if let hostname, hostname.isEmpty || hostname.utf8.count > 255 { throw .invalid("hostname: must be 1-255 bytes") }
        guard fallbackPatienceSeconds >= 0 else { throw .invalid("fallbackPatienceSeconds: must be 0 or more") }
        guard (1...256).contains(peerUploadSlots) else { throw .invalid("peerUploadSlots: must be 1-256, is \(peerUploadSlots)") }
        guard (1...16).contains(piecesPerSource) else { throw .invalid("piecesPerSource: must be 1-16, is \(piecesPerSource)") }
        guard (1...64).contains(piecesInFlight) else { throw .invalid("piecesInFlight: must be 1-64, is \(piecesInFlight)") }
        guard (0...16).contains(peerUploadQueue) else { throw .invalid("peerUploadQueue: must be 0-16, is \(peerUploadQueue)") }
        for (name, listen) in [("peerListen", peerListen), ("metricsListen", metricsListen)] {
            if let listen, ListenAddress(listen) == nil { throw .invalid("\(name): '\(listen)' is not HOST:PORT") }
        }
        if let cap = peerUploadBytesPerSecond, cap <= 0 { throw .invalid("peerUploadBytesPerSecond: must be positive") }
        if let cap = downloadBytesPerSecond, cap <= 0 { throw .invalid("downloadBytesPerSecond: must be positive") }
        guard peerMaxConnections > 0 else { throw .invalid("peerMaxConnections: must be positive") }
        guard heartbeatSeconds >= 1 else { throw .invalid("heartbeatSeconds: must be at least 1") }
        guard commitSeconds >= 0 else { throw .invalid("commitSeconds: must be 0 or more") }
        if let problem = healthProbe?.problem { throw .invalid("healthProbe: \(problem)") }
        if let unitPath, !unitPath.hasPrefix("/") { throw .invalid("unitPath: must be an absolute path, is '\(unitPath)'") }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): "\(key.stringValue): missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): wrong type"
        case .dataCorrupted(let context): "not valid JSON: \(context.debugDescription)"
        @unknown default: "\(error)"
        }
    }
}

/// Why a config was refused.
public enum AgentConfigError: Error, CustomStringConvertible {
    case unreadable(String, String)
    case invalid(String)

    public var description: String {
        switch self {
        case .unreadable(let path, let detail): "cannot read \(path): \(detail)"
        case .invalid(let reason): reason
        }
    }
}
