import Transfer
import Wire

/// What HBS keeps of a host's secret: its SHA-256 in hex, never the secret. Computed where the
/// request arrives, outside the control plane's actor, so a beat's hashing runs in parallel
/// with other beats; compared without an early exit.
public struct CredentialDigest: Sendable, Equatable, CustomStringConvertible {
    public let hex: String

    public init(ofSecret secret: String) {
        hex = Hex.encode(Digest.sha256(Array(secret.utf8)))
    }

    public init(stored hex: String) { self.hex = hex }

    public var description: String { hex }

    /// Whether `stored` is this digest, in time that does not depend on where they differ
    /// (a length differs only for a corrupt store entry: no secret in that).
    public func matches(_ stored: String) -> Bool {
        var (mine, theirs) = (hex, stored)
        return mine.withUTF8 { a in
            theirs.withUTF8 { b in
                guard a.count == b.count else { return false }
                var difference: UInt8 = 0
                for index in a.indices { difference |= a[index] ^ b[index] }
                return difference == 0
            }
        }
    }
}
