#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Rollouts

/// Everything `fledge-hbs` can be told, from flags or a JSON config file with the same keys.
public struct HBSConfiguration: Codable, Sendable {
    /// Directory of the embedded store.
    public var data: String = "/var/lib/fledge-hbs"
    public var agentListen: String = "0.0.0.0:6030"
    public var adminListen: String = "0.0.0.0:6031"
    /// `redis://host:port` of a Redis shared by several HBS instances; nil for the embedded store.
    public var redis: String?
    /// File holding the admin bearer token; without one, changes come only from `adminAllow`.
    public var adminTokenFile: String?
    /// File holding the fleet's enrolment token: a host presents it once (`POST /v1/enrol`)
    /// to get the secret it beats with. Without one, HBS makes one: `DATA/fleet-token` (0600)
    /// with the embedded store, a key in Redis shared by every instance.
    public var fleetTokenFile: String?
    /// Beats need no per-host credential (a lab without enrolment; logged loudly): any process
    /// that reaches the agent listener can then speak for any host.
    public var anonymousBeats: Bool = false
    /// Believe the address a beat advertises (`ip`) instead of the connection's (hosts behind
    /// NAT or a proxy); off, a host is listed to peers at the address HBS saw it from.
    public var trustAdvertisedAddresses: Bool = false
    /// Admin reads (`/v1/agents`, rollouts, `/metrics`, falcon's GETs) are open to anyone;
    /// off, they need the same authority as changes (`/healthz` is always open).
    public var publicReads: Bool = false
    /// PEM certificate chain and private key: with both, the agent and admin listeners serve
    /// HTTPS only (agents pin the CA with `hbsCA`).
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Seconds a client has to send a whole request (`RequestDeadline`), and a connection may
    /// sit idle between requests.
    public var requestTimeoutSeconds: Int64 = 10
    public var idleTimeoutSeconds: Int64 = 60
    /// Networks whose peers may change things without a token.
    public var adminAllow: [String] = ["127.0.0.0/8", "::1/128"]
    /// Hosts upgrading at once when a rollout does not say (falcon's threshold).
    public var maxConcurrent: Int = 2000
    /// The release name of the agent: falcon rollouts upgrade it.
    public var agentName: String = "fledge-agent"
    public var engine: EngineConfiguration = .init()

    public init() {}

    /// Reads a JSON config file; keys it leaves out keep their defaults.
    public static func load(from path: String) throws -> HBSConfiguration {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONDecoder().decode(HBSConfiguration.self, from: data)
    }

    public init(from decoder: any Decoder) throws {
        let defaults = HBSConfiguration()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        data = try container.decodeIfPresent(String.self, forKey: .data) ?? defaults.data
        agentListen = try container.decodeIfPresent(String.self, forKey: .agentListen) ?? defaults.agentListen
        adminListen = try container.decodeIfPresent(String.self, forKey: .adminListen) ?? defaults.adminListen
        redis = try container.decodeIfPresent(String.self, forKey: .redis)
        adminTokenFile = try container.decodeIfPresent(String.self, forKey: .adminTokenFile)
        fleetTokenFile = try container.decodeIfPresent(String.self, forKey: .fleetTokenFile)
        anonymousBeats = try container.decodeIfPresent(Bool.self, forKey: .anonymousBeats) ?? defaults.anonymousBeats
        trustAdvertisedAddresses = try container.decodeIfPresent(Bool.self, forKey: .trustAdvertisedAddresses) ?? defaults.trustAdvertisedAddresses
        publicReads = try container.decodeIfPresent(Bool.self, forKey: .publicReads) ?? defaults.publicReads
        tlsCertificate = try container.decodeIfPresent(String.self, forKey: .tlsCertificate)
        tlsKey = try container.decodeIfPresent(String.self, forKey: .tlsKey)
        requestTimeoutSeconds = try container.decodeIfPresent(Int64.self, forKey: .requestTimeoutSeconds) ?? defaults.requestTimeoutSeconds
        idleTimeoutSeconds = try container.decodeIfPresent(Int64.self, forKey: .idleTimeoutSeconds) ?? defaults.idleTimeoutSeconds
        adminAllow = try container.decodeIfPresent([String].self, forKey: .adminAllow) ?? defaults.adminAllow
        maxConcurrent = try container.decodeIfPresent(Int.self, forKey: .maxConcurrent) ?? defaults.maxConcurrent
        agentName = try container.decodeIfPresent(String.self, forKey: .agentName) ?? defaults.agentName
        engine = try container.decodeIfPresent(EngineConfiguration.self, forKey: .engine) ?? defaults.engine
    }
}
