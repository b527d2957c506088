import Synchronization

/// A Redis server by URL (`redis://host:port`), with one connection made on first use and
/// made again after it breaks. Every call is bounded by `timeoutMilliseconds`; after a failure
/// calls are refused at once until the next attempt is due: `retryMilliseconds`, doubling with
/// each failure in a row up to `maxRetryMilliseconds`. So a dead Redis costs a quick refusal
/// per call, and one that hangs (its sockets open, nothing answered) holds its callers for one
/// timeout every few seconds, not every call. Thread-safe: calls take turns.
public final class RedisClient: Sendable {
    public let host: String
    public let port: Int
    private let timeoutMilliseconds: Int
    private let retryMilliseconds: Int64
    private let maxRetryMilliseconds: Int64
    private let state = Mutex<State>(State())

    private struct State {
        var connection: RedisConnection?
        /// When the connection may be tried again after a failure.
        var nextAttempt: ContinuousClock.Instant?
        var failuresInARow = 0
    }

    /// `redis://host:port`, `redis://host` (port 6379) or `host:port`.
    public init(
        url: String, timeoutMilliseconds: Int = 500, retryMilliseconds: Int64 = 500, maxRetryMilliseconds: Int64 = 4_000
    ) throws(RedisError) {
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
        self.maxRetryMilliseconds = max(retryMilliseconds, maxRetryMilliseconds)
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
            if let next = state.nextAttempt, ContinuousClock.now < next {
                throw .unavailable("\(host):\(port) failed moments ago (\(state.failuresInARow) times in a row); tried again shortly")
            }
            do throws(RedisError) {
                if state.connection == nil {
                    state.connection = try RedisConnection(host: host, port: port, timeoutMilliseconds: timeoutMilliseconds)
                }
                let result = try body(state.connection!)
                state.failuresInARow = 0
                state.nextAttempt = nil
                return result
            } catch {
                if state.connection?.isBroken != false {
                    // The connection is gone (or never came): back off before the next one.
                    state.connection = nil
                    state.failuresInARow += 1
                    let backoff = min(maxRetryMilliseconds, retryMilliseconds << min(state.failuresInARow - 1, 16))
                    state.nextAttempt = ContinuousClock.now + .milliseconds(backoff)
                }
                throw error
            }
        }
    }
}
