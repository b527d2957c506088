#if canImport(FoundationEssentials)
import Fetch
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage
import Transfer
import Wire

/// This host's credential with HBS (`HostIdentity`): the secret HBS issued when the host
/// enrolled, kept in `DATA/identity.json` (0600) so a restart beats on without enrolling again.
struct HostCredential: Codable, Sendable, Equatable {
    var hostname: String
    var secret: String

    /// The headers every beat carries.
    var headers: [String] { ["\(HostIdentity.hostHeader): \(hostname)", "Authorization: Bearer \(secret)"] }

    static func path(data: String) -> FilePath { FilePath(data).appending("identity.json") }

    /// The saved credential, if it is this hostname's.
    static func load(data: String, hostname: String) -> HostCredential? {
        guard let bytes = try? Files.read(path(data: data)),
              let credential = try? JSONDecoder().decode(HostCredential.self, from: Data(bytes)),
              credential.hostname == hostname else { return nil }
        return credential
    }

    func save(data: String) throws(TransferError) {
        let bytes = Array((try? JSONEncoder().encode(self)) ?? Data())
        try Files.writeAtomically(bytes, to: Self.path(data: data), mode: 0o600)
    }

    /// Enrols `hostname` at `hbs` with the fleet token: the secret HBS issues, or why not
    /// (a name bound already needs an admin to forget it first).
    static func enrol(hbs: String, hostname: String, fleetToken: String, caFile: String?) throws(EnrolmentError) -> HostCredential {
        let body = Array((try? JSONEncoder().encode(EnrolRequest(hostname: hostname))) ?? Data())
        let answer: (status: Int, body: [UInt8], localIP: String?)
        do {
            answer = try Curl.postJSON(
                hbs + "/v1/enrol", body: body, headers: ["Authorization: Bearer \(fleetToken)"], timeoutSeconds: 10, caFile: caFile)
        } catch { throw .unreachable("\(error)") }
        let text = String(decoding: answer.body.prefix(300), as: UTF8.self)
        switch answer.status {
        case 201:
            guard let reply = try? JSONDecoder().decode(EnrolReply.self, from: Data(answer.body)), reply.hostname == hostname,
                  !reply.secret.isEmpty else { throw .refused(answer.status, "not an enrolment reply: \(text)") }
            return HostCredential(hostname: hostname, secret: reply.secret)
        case 409: throw .nameTaken(hostname)
        default: throw .refused(answer.status, text)
        }
    }
}

/// Why a host could not enrol.
enum EnrolmentError: Error, CustomStringConvertible {
    case unreachable(String)
    /// Another credential holds the name (this host's data was wiped, or another host uses it).
    case nameTaken(String)
    case refused(Int, String)

    var description: String {
        switch self {
        case .unreachable(let detail): "cannot reach HBS to enrol: \(detail)"
        case .nameTaken(let host):
            "HBS has \(host) enrolled with another credential (this host's data was reset, or another host uses its name): an admin must DELETE /v1/agents/\(host) before it can enrol again"
        case .refused(let status, let text): "enrolment refused: HTTP \(status): \(text)"
        }
    }
}
