import HTTPTypes
import Hummingbird
import NIOCore

/// The web dashboard on HBS's admin listener, at `/ui/`: its page, style and script come from
/// the binary, and it reads and acts through the admin API under the same authority rules
/// (the page itself carries no data, so it loads for anyone; every call it makes asks for the
/// admin token where one is required). No fetches from anywhere else (its CSP says so too).
struct Dashboard {
    func register(on router: Router<HBSRequestContext>) {
        // The router takes /ui and /ui/ as one path; the page names its assets absolutely.
        router.get("/ui/") { _, _ in Self.asset(DashboardPage.html, type: "text/html; charset=utf-8") }
        router.get("/ui/style.css") { _, _ in Self.asset(DashboardPage.css, type: "text/css; charset=utf-8") }
        router.get("/ui/app.js") { _, _ in Self.asset(DashboardScript.javascript, type: "text/javascript; charset=utf-8") }
    }

    static func asset(_ text: String, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Whether `path` is the dashboard's own (open like /healthz: no data in it).
    static func serves(_ path: String) -> Bool { path == "/ui" || path.hasPrefix("/ui/") }
}
