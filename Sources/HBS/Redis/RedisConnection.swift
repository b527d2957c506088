import CHiredis
import Glibc

/// A Redis reply, copied out of hiredis' structures.
public enum RedisReply: Equatable, Sendable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisReply])
    case null
    case status(String)
    case error(String)

    public var text: String? {
        switch self {
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .string(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }
}

/// Why a Redis call failed: no connection (or it broke), or the server said no.
public enum RedisError: Error, CustomStringConvertible, Equatable {
    case unavailable(String)
    case server(String)

    public var description: String {
        switch self {
        case .unavailable(let detail): "redis unavailable: \(detail)"
        case .server(let detail): "redis error: \(detail)"
        }
    }
}

/// One blocking connection to a Redis server through hiredis: the only place hiredis is used.
/// Commands go as argument arrays (`redisCommandArgv`), so nothing is ever spliced into a
/// command string. Not thread-safe: one owner at a time. Once a call fails at the connection
/// level the connection is broken for good; make a new one.
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    public private(set) var isBroken = false

    public init(host: String, port: Int, timeoutMilliseconds: Int = 1000) throws(RedisError) {
        let timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        guard let context = redisConnectWithTimeout(host, Int32(port), timeout) else {
            throw .unavailable("cannot allocate a hiredis context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw .unavailable("\(host):\(port): \(message)")
        }
        redisSetTimeout(context, timeout)
        self.context = context
    }

    deinit { redisFree(context) }

    /// Runs one command; a Redis error reply is thrown as `.server`.
    @discardableResult
    public func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        let reply = try pipeline([arguments])[0]
        if case .error(let message) = reply { throw .server(message) }
        return reply
    }

    /// Sends every command, then reads every reply: one round trip for all of them. Error
    /// replies come back as `.error`, in their place, for the caller to judge.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        guard !isBroken else { throw .unavailable("connection broken") }
        for arguments in commands {
            let bytes = arguments.map { Array($0.utf8) }
            let appended = Self.withCStrings(bytes) { pointers, lengths in
                redisAppendCommandArgv(context, Int32(bytes.count), pointers, lengths)
            }
            guard appended == REDIS_OK else {
                isBroken = true
                throw .unavailable(Self.errorText(context))
            }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let reply = raw else {
                isBroken = true  // replies still owed would pair with the wrong commands
                throw .unavailable(Self.errorText(context))
            }
            defer { freeReplyObject(reply) }
            replies.append(Self.copy(reply.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    private static func withCStrings<T>(
        _ arguments: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T
    ) -> T {
        let buffers = arguments.map { argument -> UnsafeMutablePointer<CChar> in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, argument.count))
            argument.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(buffer).copyMemory(from: base, byteCount: argument.count) }
            }
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = buffers.map { UnsafePointer($0) }
        let lengths = arguments.map(\.count)
        return pointers.withUnsafeMutableBufferPointer { pointerBuffer in
            lengths.withUnsafeBufferPointer { lengthBuffer in body(pointerBuffer.baseAddress!, lengthBuffer.baseAddress!) }
        }
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            return .string(value.str.map { Array(UnsafeRawBufferPointer(start: $0, count: value.len)) } ?? [])
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            return .array((0..<value.elements).map { copy(value.element[$0]!) })
        case REDIS_REPLY_STATUS:
            return .status(value.str.map { String(cString: $0) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(value.str.map { String(cString: $0) } ?? "")
        default:
            return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
