import Testing
import Wire

/// Versions order as versions, not strings.
@Suite struct SemanticVersionTests {
    func v(_ text: String) -> SemanticVersion { SemanticVersion(text)! }

    @Test func numericOrder() {
        #expect(v("1.10.0") > v("1.9.0"))
        #expect(v("2.0.0") > v("1.99.99"))
        #expect(v("6.0.1") < v("6.0.10"))
        #expect(v("1.2") == v("1.2.0"))
    }

    @Test func prereleasesComeFirst() {
        #expect(v("2.0.0-rc.1") < v("2.0.0"))
        #expect(v("2.0.0-alpha") < v("2.0.0-alpha.1"))
        #expect(v("2.0.0-alpha.2") < v("2.0.0-alpha.10"))
        #expect(v("2.0.0-alpha.10") < v("2.0.0-beta"))
        #expect(v("1.9.9") < v("2.0.0-rc.1"))
    }

    @Test func buildMetadataIsIgnored() {
        #expect(v("1.0.0+build.5") == v("1.0.0+build.7"))
        #expect(Set([v("1.0.0+a"), v("1.0.0")]).count == 1)
    }

    @Test func falconStyleVersions() {
        #expect(v("6.0.1.2") > v("6.0.1"))
        #expect(v("6.1") > v("6.0.9"))
    }

    @Test(arguments: ["", "1..2", ".1", "1.", "1.0.0-", "1.0.0-a..b"])
    func notVersions(_ text: String) {
        #expect(SemanticVersion(text) == nil)
    }
}
