/// What one wrk pass of `fledge-bench hbs` is aimed at.
enum HBSTarget: String, CaseIterable {
    /// The reference: hello-world Hummingbird route reading the heartbeat, constant JSON answer.
    case helloPost = "hello"
    /// For information: hello-world `GET /`, no body.
    case helloGet = "hello_get"
    /// fledge-hbs on its embedded store, every beat authenticated as its host.
    case embedded
    /// The same without per-host credentials (`--anonymous-beats`): what authentication costs.
    case embeddedAnonymous = "embedded_anonymous"
    case redis
    /// Two fledge-hbs on one redis-server, each beaten by half the hosts: what a second
    /// instance adds, or costs, on the same cores.
    case redisPair = "redis_pair"
    /// fledge-hbs embedded with a rollout active: pending hosts, admitted hosts getting orders.
    case embeddedRollout = "embedded_rollout"
    /// fledge-hbs on Redis with a rollout active.
    case redisRollout = "redis_rollout"
    /// The reference over TLS: the hello-world route behind the same TLS (swift-nio-ssl).
    case helloTLS = "hello_tls"
    /// fledge-hbs embedded, authenticated beats, over TLS.
    case embeddedTLS = "embedded_tls"

    /// Whether wrk sends heartbeats (the Lua script) rather than plain GETs.
    var sendsHeartbeats: Bool { self != .helloGet }

    var isTLS: Bool { self == .helloTLS || self == .embeddedTLS }

    var onRedis: Bool { self == .redis || self == .redisRollout || self == .redisPair }

    var server: String {
        switch self {
        case .helloPost, .helloGet: "hello-world (Hummingbird 2)"
        case .embedded: "fledge-hbs, embedded store"
        case .embeddedAnonymous: "fledge-hbs, embedded, anonymous beats"
        case .redis: "fledge-hbs, Redis store"
        case .redisPair: "fledge-hbs, two instances on one Redis"
        case .embeddedRollout: "fledge-hbs, embedded, rollout active"
        case .redisRollout: "fledge-hbs, Redis, rollout active"
        case .helloTLS: "hello-world over TLS"
        case .embeddedTLS: "fledge-hbs, embedded, over TLS"
        }
    }

    var request: String {
        switch self {
        case .helloPost, .helloTLS: "POST /v1/heartbeat -> constant JSON"
        case .helloGet: "GET / -> \"hello\""
        case .embeddedAnonymous: "POST /v1/heartbeat, no credential"
        case .embedded, .redis, .embeddedRollout, .redisRollout, .embeddedTLS: "POST /v1/heartbeat, authenticated"
        case .redisPair: "POST /v1/heartbeat, authenticated, half the hosts at each"
        }
    }
}
