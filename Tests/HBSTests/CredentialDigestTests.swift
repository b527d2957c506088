import Testing
import HBS

/// What HBS keeps of a host's secret.
@Suite struct CredentialDigestTests {
    /// Only the SHA-256 of the secret is kept, and it matches only its own secret.
    @Test func aCredentialDigestMatchesOnlyItsSecret() {
        let digest = CredentialDigest(ofSecret: "abc")
        #expect(digest.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(digest.matches(digest.hex))
        #expect(!digest.matches(CredentialDigest(ofSecret: "abd").hex))
        #expect(!digest.matches(String(digest.hex.dropLast())), "a shorter stored entry matches nothing")
        #expect(!digest.matches(""))
    }
}
