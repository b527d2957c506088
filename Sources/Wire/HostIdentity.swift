/// How a host proves it is the host it names (per-host identity). Once, with the fleet's
/// enrolment token, it asks HBS for a secret bound to its hostname (`POST /v1/enrol`); from
/// then on every beat names the host (`Fledge-Host`) and carries that secret
/// (`Authorization: Bearer`). HBS keeps only the secret's SHA-256, durably, and answers a beat
/// without it, or naming another host, with 401/403; rebinding a name takes an admin
/// (`DELETE /v1/agents/NAME`).
///
/// A secret HBS issues, not a host key the agent signs beats with: checking a beat is then one
/// SHA-256 of 32 bytes, where an Ed25519 verification per beat would cost HBS a core at fleet
/// scale; TLS keeps the secret off the wire.
public enum HostIdentity {
    /// The header a beat names its host in (before its body is read).
    public static let hostHeader = "Fledge-Host"
}

/// `POST /v1/enrol`'s body (with `Authorization: Bearer FLEET-TOKEN`).
public struct EnrolRequest: Codable, Sendable, Equatable {
    public var hostname: String

    public init(hostname: String) { self.hostname = hostname }
}

/// HBS's answer: the secret this host beats with from now on (shown once).
public struct EnrolReply: Codable, Sendable, Equatable {
    public var hostname: String
    public var secret: String

    public init(hostname: String, secret: String) {
        self.hostname = hostname
        self.secret = secret
    }
}
