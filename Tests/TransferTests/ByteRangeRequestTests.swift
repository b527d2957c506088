import Testing
@testable import Transfer

/// RFC 9110 §14 Range semantics, each form and each malformed form.
@Suite struct ByteRangeRequestTests {
    @Test func noHeaderIsWhole() {
        #expect(ByteRangeRequest(header: nil, size: 100) == .whole)
    }

    @Test(arguments: [
        ("bytes=0-9", 0...9), ("bytes=10-", 10...99), ("bytes=-10", 90...99), ("bytes=90-1000", 90...99),
        ("bytes=-1000", 0...99), ("bytes=99-99", 99...99), ("BYTES=0-0", 0...0), (" bytes=5-6 ", 5...6),
        ("bytes= 5-6", 5...6),
    ] as [(String, ClosedRange<Int64>)])
    func satisfiable(_ header: String, _ range: ClosedRange<Int64>) {
        #expect(ByteRangeRequest(header: header, size: 100) == .partial(range))
    }

    @Test(arguments: ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=1000-2000"])
    func unsatisfiable(_ header: String) {
        #expect(ByteRangeRequest(header: header, size: 100) == .unsatisfiable)
    }

    @Test func emptyRepresentationSatisfiesNothing() {
        #expect(ByteRangeRequest(header: "bytes=-5", size: 0) == .unsatisfiable)
        #expect(ByteRangeRequest(header: "bytes=0-", size: 0) == .unsatisfiable)
    }

    /// Malformed headers are ignored (200, whole), as RFC 9110 says.
    @Test(arguments: [
        "bytes=9-1", "bytes=a-b", "bytes=-", "bytes=", "bytes", "items=0-1", "bytes=0-1,5-6", "bytes=--1",
        "bytes=1-2-3", "bytes=+1-2", "bytes=0x10-20", "bytes=99999999999999999999-", "=0-1", "",
    ])
    func malformedIsIgnored(_ header: String) {
        #expect(ByteRangeRequest(header: header, size: 100) == .whole)
    }
}

/// Request targets: what reaches the catalog, and what is refused before.
@Suite struct RequestPathTests {
    @Test func plainPaths() {
        #expect(RequestPath(target: "/a/b/c") == .components(["a", "b", "c"]))
        #expect(RequestPath(target: "//a///b?x=1#f") == .components(["a", "b"]))
        #expect(RequestPath(target: "/a%20b") == .components(["a b"]))
        #expect(RequestPath(target: "/") == .components([]))
    }

    @Test(arguments: ["/../etc/passwd", "/a/../../etc", "/%2e%2e/etc/passwd", "/%2E%2E%2fetc", "/a/./b", "/.partial/x", "/a/%2e"])
    func traversalIsForbidden(_ target: String) {
        guard case .forbidden = RequestPath(target: target) else {
            Issue.record("\(target) was not refused: \(RequestPath(target: target))")
            return
        }
    }

    @Test(arguments: ["etc/passwd", "http://x/etc", "/a%zz", "/a%2", "/a%00b"])
    func malformedIsBadRequest(_ target: String) {
        guard case .badRequest = RequestPath(target: target) else {
            Issue.record("\(target) was not a bad request: \(RequestPath(target: target))")
            return
        }
    }
}
