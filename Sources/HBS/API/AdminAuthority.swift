import HTTPTypes
import Hummingbird
import NIOCore

/// Who may use the admin API: peers in the allowed networks (loopback by default), or anyone
/// with the admin bearer token when one is configured. Reads need the same authority unless
/// HBS runs with public reads (`/healthz` and the dashboard's page, which holds no data, are
/// always open). Falcon left DELETE open to all; this
/// does not. Every change is logged with who made it and how it ended.
struct AdminAuthority: RouterMiddleware {
    typealias Context = HBSRequestContext

    let allowed: [IPNetwork]
    let token: String?
    var publicReads = false

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let isRead = request.method == .get || request.method == .head
        if isRead && (publicReads || request.uri.path == "/healthz" || Dashboard.serves(request.uri.path)) {
            return try await next(request, context)
        }
        guard let who = authority(of: request, context) else {
            let what = isRead ? "reads" : "changes"
            let reason = token == nil
                ? "forbidden: \(what) are accepted only from \(allowed.map(\.description).joined(separator: ", "))"
                : "forbidden: \(what) need a local peer or the admin bearer token"
            if !isRead {
                context.logger.warning("admin \(request.method) \(request.uri.path) refused: \(Self.peer(context)) has no authority")
            }
            // Each API keeps its own error shape: falcon's envelope on falcon's routes.
            return request.uri.path.hasPrefix("/v1/") ? JSONResponse.error(.forbidden, reason) : JSONResponse.falconError(.forbidden, reason)
        }
        if isRead { return try await next(request, context) }
        if let site = Self.crossSite(request) {
            context.logger.warning("admin \(request.method) \(request.uri.path) refused: a cross-site request from a browser (\(site))")
            let reason = "forbidden: changes are not accepted from another site's page (\(site))"
            return request.uri.path.hasPrefix("/v1/") ? JSONResponse.error(.forbidden, reason) : JSONResponse.falconError(.forbidden, reason)
        }
        let response = try await next(request, context)
        context.logger.notice("admin \(request.method) \(request.uri) by \(who): \(response.status.code)")
        return response
    }

    /// Why a change comes from another site's page, if it does: a browser says so
    /// (`Sec-Fetch-Site`), or names an `Origin` that is not this listener. Authority by source
    /// address would otherwise let any page an operator opens (with the admin port forwarded
    /// to loopback) pause or abort rollouts; curl and fledgectl send neither header.
    static func crossSite(_ request: Request) -> String? {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin", site != "none" {
            return "Sec-Fetch-Site: \(site)"
        }
        if let origin = request.headers[HTTPField.Name("Origin")!], let host = request.head.authority {
            let named = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init)
            if named != host { return "Origin: \(origin)" }
        }
        return nil
    }

    /// Who the request speaks for, if anyone may: "ADDRESS (allowed network)" or "admin token
    /// from ADDRESS".
    private func authority(of request: Request, _ context: Context) -> String? {
        if let address = context.remoteAddress, allowed.contains(where: { $0.contains(address) }) {
            return "\(Self.peer(context)) (allowed network)"
        }
        if let token, Self.presents(token, request) { return "admin token from \(Self.peer(context))" }
        return nil
    }

    private static func peer(_ context: Context) -> String {
        context.remoteAddress.flatMap(AgentRoutes.ip) ?? "an unknown peer"
    }

    /// Whether the request carries `Authorization: Bearer <token>` (the admin or the fleet token).
    static func presents(_ token: String, _ request: Request) -> Bool {
        AgentRoutes.bearer(request).map { constantTimeEquals($0, token) } ?? false
    }

    /// Compares hashes of both without an early exit (`CredentialDigest.matches`): the time
    /// taken says nothing about how much of the token was right, nor about its length.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        CredentialDigest(ofSecret: a).matches(CredentialDigest(ofSecret: b).hex)
    }
}

/// An IPv4 or IPv6 network in CIDR form (`127.0.0.0/8`, `::1/128`).
public struct IPNetwork: Sendable, CustomStringConvertible, Equatable {
    let bytes: [UInt8]
    let prefix: Int
    public let description: String

    public static let loopback = [IPNetwork("127.0.0.0/8")!, IPNetwork("::1/128")!]

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = try? SocketAddress(ipAddress: String(first), port: 0),
              let bytes = Self.bytes(of: address) else { return nil }
        let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let prefix, (0...bytes.count * 8).contains(prefix) else { return nil }
        self.bytes = bytes
        self.prefix = prefix
        self.description = "\(first)/\(prefix)"
    }

    func contains(_ address: SocketAddress) -> Bool {
        guard var candidate = Self.bytes(of: address) else { return false }
        // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
        if candidate.count == 16, bytes.count == 4, candidate.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] {
            candidate = Array(candidate.suffix(4))
        }
        guard candidate.count == bytes.count else { return false }
        var bits = prefix
        for (a, b) in zip(candidate, bytes) where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
            if a & mask != b & mask { return false }
            bits -= 8
        }
        return true
    }

    private static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4): withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6): withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: nil
        }
    }
}
