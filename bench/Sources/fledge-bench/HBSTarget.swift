/// What one wrk pass of `fledge-bench hbs` is aimed at.
enum HBSTarget: String, CaseIterable {
    /// The reference: hello-world Hummingbird route reading the heartbeat, constant JSON answer.
    case helloPost = "hello"
    /// For information: hello-world `GET /`, no body.
    case helloGet = "hello_get"
    case embedded
    case redis
    /// fledge-hbs embedded with a rollout active: pending hosts, admitted hosts getting orders.
    case embeddedRollout = "embedded_rollout"

    /// Whether wrk sends heartbeats (the Lua script) rather than plain GETs.
    var sendsHeartbeats: Bool { self != .helloGet }

    var server: String {
        switch self {
        case .helloPost, .helloGet: "hello-world (Hummingbird 2)"
        case .embedded: "fledge-hbs, embedded store"
        case .redis: "fledge-hbs, Redis store"
        case .embeddedRollout: "fledge-hbs, embedded, rollout active"
        }
    }

    var request: String {
        switch self {
        case .helloPost: "POST /v1/heartbeat -> constant JSON"
        case .helloGet: "GET / -> \"hello\""
        case .embedded, .redis, .embeddedRollout: "POST /v1/heartbeat"
        }
    }
}
