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
    /// File with the fleet token HBS asks for, if it asks.
    public var fleetTokenFile: String?
    /// Where a release's unit file is installed when systemd runs.
    public var unitPath: String?

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
        unitPath = try container.decodeIfPresent(String.self, forKey: .unitPath)
    }

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
