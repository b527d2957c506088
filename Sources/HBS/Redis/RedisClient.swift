import Synchronization

/// A Redis server by URL (`redis://host:port`), with one connection made on first use and
/// made again after it breaks, at most every `retryMilliseconds`, so a dead Redis costs a
/// quick refusal per call, not a connect timeout. Thread-safe: calls take turns.
public final class RedisClient: Sendable {
    public let host: String
    public let port: Int
    private let timeoutMilliseconds: Int
    private let retryMilliseconds: Int64
    private let state = Mutex<State>(State())

    private struct State {
        var connection: RedisConnection?
        var lastAttempt: ContinuousClock.Instant?
    }

    /// `redis://host:port`, `redis://host` (port 6379) or `host:port`.
    public init(url: String, timeoutMilliseconds: Int = 500, retryMilliseconds: Int64 = 500) throws(RedisError) {
        var rest = Substring(url)
        if rest.hasPrefix("redis://") { rest = rest.dropFirst(8) }
        rest = rest.prefix { $0 != "/" }
        let parts = rest.split(separator: ":", maxSplits: 1)
        guard let first = parts.first, !first.isEmpty else { throw .unavailable("'\(url)' is not redis://HOST:PORT") }
        let port = parts.count == 2 ? Int(parts[1]) : 6379
        guard let port, (1...65535).contains(port) else { throw .unavailable("'\(url)' has no valid port") }
        self.host = String(first)
        self.port = port
        self.timeoutMilliseconds = timeoutMilliseconds
        self.retryMilliseconds = retryMilliseconds
    }

    /// Runs a command on the shared connection, connecting first if needed.
    @discardableResult
    public func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        try withConnection { (connection) throws(RedisError) in try connection.command(arguments) }
    }

    /// Runs commands in one round trip, each reply (or `.error`) in its command's place.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        try withConnection { (connection) throws(RedisError) in try connection.pipeline(commands) }
    }

    /// Runs commands as one MULTI/EXEC transaction, with no other caller's command in between,
    /// in one round trip (pipelined). A command Redis refuses to queue aborts the whole
    /// transaction (EXECABORT): nothing of it is applied.
    public func transaction(_ commands: [[String]]) throws(RedisError) {
        let replies = try withConnection { (connection) throws(RedisError) in
            try connection.pipeline([["MULTI"]] + commands + [["EXEC"]])
        }
        if case .error(let message)? = replies.last { throw .server(message) }
    }

    private func withConnection<T: Sendable>(_ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        try state.withLock { (state: inout State) throws(RedisError) -> T in
            if state.connection?.isBroken == true { state.connection = nil }
            if state.connection == nil {
                let now = ContinuousClock.now
                if let last = state.lastAttempt, now - last < .milliseconds(retryMilliseconds) {
                    throw .unavailable("\(host):\(port) was unreachable moments ago")
                }
                state.lastAttempt = now
                state.connection = try RedisConnection(host: host, port: port, timeoutMilliseconds: timeoutMilliseconds)
            }
            return try body(state.connection!)
        }
    }
}
