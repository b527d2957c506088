import CCurl
import Glibc
import SystemPackage
import Transfer

/// Where a transfer's body goes. Bytes arrive as raw buffers from libcurl and never leave this
/// wrapper as such: they are written to a file (and hashed on the way), or copied into an array.
enum CurlBodySink {
    /// Write at `offset` onward into `fd`, at most `limit` bytes, feeding `hashers` as they pass.
    case file(FileDescriptor, offset: Int64, limit: Int64, hashers: [Hasher])
    /// Keep the body in memory, at most `limit` bytes (manifests, small API answers).
    case memory(limit: Int)
    /// Keep the body in memory for the caller to take as it arrives (`takeBody`), at most
    /// `limit` bytes between two takes (an event stream).
    case stream(limit: Int)
}

/// Options for one HTTP GET.
struct CurlRequestOptions {
    var range: ClosedRange<Int64>? = nil
    var connectTimeoutMs: Int = 3000
    /// Abort when slower than `lowSpeedBytes` per second for `lowSpeedSeconds`.
    var lowSpeedBytes: Int = 1024
    var lowSpeedSeconds: Int = 10
    var maxRecvBytesPerSecond: Int64? = nil
    var followRedirects = false
    /// Statuses whose body goes to the sink; any other status keeps a short body for the error.
    var acceptedStatuses: Set<Int> = [200]
    /// A POST with this body instead of a GET.
    var postBody: [UInt8]? = nil
    /// Another method (`DELETE`), when neither GET nor POST.
    var method: String? = nil
    /// Extra request headers, `Name: value`.
    var headers: [String] = []
    /// Whole-request limit (a long-poll's), in milliseconds; nil for none.
    var totalTimeoutMs: Int? = nil
    /// For a range request: the size of the whole file, so a `206` must say exactly
    /// `Content-Range: bytes FIRST-LAST/SIZE` of the range asked for (and a matching
    /// `Content-Length`), or the transfer stops before its first body byte.
    var expectedFileSize: Int64? = nil
    /// PEM file of the CAs an https server's certificate must chain to (instead of the
    /// system's bundle).
    var caFile: String? = nil
    /// Connections to reuse and keep for the next request (one per server), if any.
    var connections: CurlConnectionCache? = nil
}

/// One libcurl easy handle doing one GET into a sink. Used by `CurlMulti` or performed alone.
final class CurlTransfer {
    let handle: UnsafeMutableRawPointer
    /// Held while the handle lives: the shared cache must outlive every handle using it.
    private let connections: CurlConnectionCache?
    let url: String
    private let sink: CurlBodySink
    private let accepted: Set<Int>
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var statusChecked = false
    private var statusAccepted = false
    private let expectedRange: ClosedRange<Int64>?
    private let expectedFileSize: Int64?
    /// The few response headers that matter here, by lowercase name (last block only).
    private(set) var headers: [String: String] = [:]
    /// The transfer was stopped on purpose once its status was known to be refused (its
    /// message kept): not a transport failure.
    private var stoppedAfterStatus = false
    /// The response was not the one asked for (another range, another length): why.
    private var invalidResponse: String?
    private static let keptHeaders: Set<String> = ["content-range", "content-length", "retry-after", "fledge-retry-after-ms", "content-type"]

    /// Bytes of the body passed to the sink (or kept, for a refused status).
    private(set) var received: Int64 = 0
    /// The body, for `.memory` sinks and for refused statuses (first 512 bytes).
    private(set) var body: [UInt8] = []
    /// A local failure that stopped the transfer: disk full, body longer than allowed.
    private(set) var sinkError: TransferError?
    /// Called when a `.stream` sink receives bytes (on the thread driving the transfer): the
    /// owner then reads only the streams that have news.
    var onStreamBytes: (() -> Void)?
    /// Background: its sockets may be left unread for a while (`CurlMulti.holdBackground`).
    var isBackground = false

    init(url: String, sink: CurlBodySink, options: CurlRequestOptions) throws(TransferError) {
        Curl.initializeOnce()
        guard let handle = curl_easy_init() else { throw .http("curl_easy_init failed") }
        self.handle = handle
        self.connections = options.connections
        self.url = url
        self.sink = sink
        self.accepted = options.acceptedStatuses
        self.expectedRange = options.range
        self.expectedFileSize = options.expectedFileSize
        errorBuffer.initialize(to: 0)

        fledge_curl_easy_setopt_string(handle, CURLOPT_URL, url)
        fledge_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        fledge_curl_easy_setopt_long(handle, CURLOPT_BUFFERSIZE, 512 * 1024)
        fledge_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, options.connectTimeoutMs)
        fledge_curl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedBytes)
        fledge_curl_easy_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, options.lowSpeedSeconds)
        fledge_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, options.followRedirects ? 1 : 0)
        fledge_curl_easy_setopt_long(handle, CURLOPT_MAXREDIRS, 5)
        fledge_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, "fledge/1")
        fledge_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        if let share = options.connections?.share { fledge_curl_easy_setopt_pointer(handle, CURLOPT_SHARE, share) }
        if let range = options.range {
            fledge_curl_easy_setopt_string(handle, CURLOPT_RANGE, "\(range.lowerBound)-\(range.upperBound)")
        }
        if let body = options.postBody {
            fledge_curl_easy_setopt_long(handle, CURLOPT_POST, 1)
            fledge_curl_easy_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            // COPYPOSTFIELDS: curl keeps its own copy, so the array need not outlive this call.
            body.withUnsafeBytes { raw in
                _ = fledge_curl_easy_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress))
            }
        }
        if let method = options.method { fledge_curl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method) }
        for header in options.headers { headerList = curl_slist_append(headerList, header) }
        if let headerList { fledge_curl_easy_setopt_pointer(handle, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)) }
        if let caFile = options.caFile { fledge_curl_easy_setopt_string(handle, CURLOPT_CAINFO, caFile) }
        if let total = options.totalTimeoutMs { fledge_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, total) }
        if let cap = options.maxRecvBytesPerSecond, cap > 0 {
            fledge_curl_easy_setopt_off(handle, CURLOPT_MAX_RECV_SPEED_LARGE, curl_off_t(cap))
        }
        fledge_curl_easy_setopt_write_cb(handle, CURLOPT_WRITEFUNCTION, curlWriteCallback)
        fledge_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(self).toOpaque())
        fledge_curl_easy_setopt_write_cb(handle, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
        fledge_curl_easy_setopt_pointer(handle, CURLOPT_HEADERDATA, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// The HTTP status, once headers have arrived (0 before, or when no response came).
    var status: Int {
        var code = 0
        fledge_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// The local address the connection used: what the server saw this host as.
    var localIP: String? {
        var pointer: UnsafeMutableRawPointer?
        guard fledge_curl_easy_getinfo_pointer(handle, CURLINFO_LOCAL_IP, &pointer) == CURLE_OK, let pointer else { return nil }
        let text = String(cString: pointer.assumingMemoryBound(to: CChar.self))
        return text.isEmpty ? nil : text
    }

    /// Whether the response's status was one the caller accepts.
    var statusWasAccepted: Bool { statusChecked && statusAccepted }

    /// Runs the transfer to its end on this thread (for small, one-off requests).
    func perform() -> CurlOutcome {
        outcome(for: curl_easy_perform(handle))
    }

    /// Turns libcurl's result code into an outcome, with curl's own words for failures.
    func outcome(for code: CURLcode) -> CurlOutcome {
        if let invalidResponse { return .invalidResponse(invalidResponse) }
        if stoppedAfterStatus { return .completed(status: status) }
        if let sinkError { return .sinkFailed(sinkError) }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            return .transportFailed(text)
        }
        return .completed(status: status)
    }

    /// The body that arrived since the last take (`.stream` sinks).
    func takeBody() -> [UInt8] {
        defer { body.removeAll(keepingCapacity: true) }
        return body
    }

    /// A server's hint of when to come back after a busy answer, in seconds: Fledge's own
    /// millisecond header, else `Retry-After`.
    var retryAfterSeconds: Double? {
        if let milliseconds = headers["fledge-retry-after-ms"].flatMap(Double.init) { return milliseconds / 1000 }
        return headers["retry-after"].flatMap(Double.init)
    }

    /// Called by libcurl for each header line (the status line starts a new block).
    fileprivate func header(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count < 8192 else { return }
        let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else { return }
        let line = bytes[first...last]
        if line.starts(with: Array("HTTP/".utf8)) {
            headers = [:]
            return
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return }
        let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
        guard Self.keptHeaders.contains(name) else { return }
        let value = line[(colon + 1)...].drop(while: isSpace)
        headers[name] = String(decoding: value, as: UTF8.self)
    }

    /// Whether an accepted response is the one asked for: a range request's `206` must name
    /// exactly that range of a file of the expected size, and a length matching it.
    private func checkRange() -> String? {
        guard let range = expectedRange, let size = expectedFileSize, status == 206 else { return nil }
        let expected = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
        guard headers["content-range"] == expected else {
            return "answered Content-Range '\(headers["content-range"] ?? "none")' for \(expected)"
        }
        if let length = headers["content-length"], Int64(length) != range.upperBound - range.lowerBound + 1 {
            return "answered Content-Length \(length) for \(range.upperBound - range.lowerBound + 1) bytes"
        }
        return nil
    }

    /// Called by libcurl for each block of body bytes. Returning false aborts the transfer.
    fileprivate func consume(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if !statusChecked {
            statusChecked = true
            statusAccepted = accepted.contains(status)
            if statusAccepted, let problem = checkRange() {
                invalidResponse = problem
                return false
            }
        }
        guard statusAccepted else {
            // Keep the start of a refused answer for the message, then stop reading it: a body
            // that never ends must not hold the transfer.
            if body.count < 512 { body.append(contentsOf: bytes.prefix(512 - body.count)) }
            guard body.count < 512 else {
                stoppedAfterStatus = true
                return false
            }
            return true
        }
        switch sink {
        case .memory(let limit), .stream(let limit):
            guard body.count + bytes.count <= limit else {
                sinkError = .http("\(url): body longer than \(limit) bytes")
                return false
            }
            if body.isEmpty { onStreamBytes?() }
            body.append(contentsOf: bytes)
        case .file(let fd, let offset, let limit, let hashers):
            guard received + Int64(bytes.count) <= limit else {
                sinkError = .http("\(url): sent more than the \(limit) bytes asked for")
                return false
            }
            var written = 0
            while written < bytes.count {
                let n = pwrite(fd.rawValue, bytes.baseAddress! + written, bytes.count - written, off_t(offset + received) + off_t(written))
                if n < 0 {
                    if errno == EINTR { continue }
                    sinkError = .io("writing \(bytes.count) bytes at offset \(offset + received)", errno: Errno(rawValue: errno))
                    return false
                }
                written += n
            }
            for hasher in hashers { hasher.update(rawBuffer: bytes) }
        }
        received += Int64(bytes.count)
        return true
    }
}

/// How a transfer ended, from the transport's point of view.
enum CurlOutcome {
    /// The server answered and the body (if any) was consumed in full; or, for a refused status,
    /// its start was kept and the rest not read.
    case completed(status: Int)
    /// The answer was not the one asked for (another range, a wrong length): stopped at once.
    case invalidResponse(String)
    /// Connect refused, timeout, reset mid-body, ...
    case transportFailed(String)
    /// Our side stopped it: disk full, oversize body.
    case sinkFailed(TransferError)
}

private let curlWriteCallback: fledge_curl_write_cb = { pointer, size, count, userdata in
    guard let userdata else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue()
    let length = size * count
    return transfer.consume(UnsafeRawBufferPointer(start: pointer, count: length)) ? length : 0
}

private let curlHeaderCallback: fledge_curl_write_cb = { pointer, size, count, userdata in
    let length = size * count
    guard let userdata else { return length }
    Unmanaged<CurlTransfer>.fromOpaque(userdata).takeUnretainedValue().header(UnsafeRawBufferPointer(start: pointer, count: length))
    return length
}

/// Process-wide libcurl set-up, and one-shot requests for small bodies.
public enum Curl {
    private static let initialized: Bool = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        return true
    }()

    static func initializeOnce() { _ = initialized }

    /// POSTs `body` (JSON) and returns the status and a small answer (up to `limit` bytes), on
    /// the calling thread. `timeoutSeconds` bounds the whole exchange (a long-poll's wait, so
    /// silence is no stall); an https server must chain to `caFile`'s CAs when given (else the
    /// system's). `localIP`: the address this host reached the server from.
    public static func postJSON(
        _ url: String, body: [UInt8], headers: [String] = [], limit: Int = 1 << 20, timeoutSeconds: Double,
        caFile: String? = nil, connections: CurlConnectionCache? = nil
    ) throws(TransferError) -> (status: Int, body: [UInt8], localIP: String?) {
        try exchange(
            "POST", url, body: body, headers: headers, limit: limit, timeoutSeconds: timeoutSeconds, caFile: caFile,
            silenceAllowed: true, connections: connections)
    }

    /// Sends `method` (with a JSON `body`, if any) and returns the status and a small answer
    /// (up to `limit` bytes), on the calling thread, in at most `timeoutSeconds`: an admin
    /// client's request (fledgectl).
    public static func request(
        _ method: String, _ url: String, body: [UInt8]? = nil, headers: [String] = [], limit: Int = 16 << 20,
        timeoutSeconds: Double = 30, caFile: String? = nil
    ) throws(TransferError) -> (status: Int, body: [UInt8]) {
        let answer = try exchange(method, url, body: body, headers: headers, limit: limit, timeoutSeconds: timeoutSeconds, caFile: caFile)
        return (answer.status, answer.body)
    }

    /// One request whatever its status, into memory: what `postJSON` and `request` share.
    private static func exchange(
        _ method: String, _ url: String, body: [UInt8]?, headers: [String], limit: Int, timeoutSeconds: Double, caFile: String?,
        silenceAllowed: Bool = false, connections: CurlConnectionCache? = nil
    ) throws(TransferError) -> (status: Int, body: [UInt8], localIP: String?) {
        var options = CurlRequestOptions()
        options.caFile = caFile
        options.connections = connections
        if let body {
            options.postBody = body
            options.headers = ["Content-Type: application/json"]
        } else if method == "POST" {
            options.postBody = []  // a POST, with nothing to say
        }
        if method != "GET" && method != "POST" { options.method = method }
        options.headers += headers
        options.totalTimeoutMs = Int(timeoutSeconds * 1000)
        if silenceAllowed { options.lowSpeedBytes = 0 }
        options.acceptedStatuses = Set(100..<600)
        let transfer = try CurlTransfer(url: url, sink: .memory(limit: limit), options: options)
        switch transfer.perform() {
        case .completed(let status): return (status, transfer.body, transfer.localIP)
        case .transportFailed(let message), .invalidResponse(let message): throw .http("\(method) \(url): \(message)")
        case .sinkFailed(let error): throw error
        }
    }

    /// GETs a small body (up to `limit` bytes) on the calling thread, in at most
    /// `timeoutSeconds` (and stalling under 1 KiB/s for 3 s ends it too); throws unless the
    /// status is 200. An https server must chain to `caFile`'s CAs when given.
    public static func get(_ url: String, limit: Int = 4 << 20, timeoutSeconds: Int = 10, caFile: String? = nil) throws(TransferError) -> [UInt8] {
        var options = CurlRequestOptions()
        options.caFile = caFile
        options.lowSpeedSeconds = min(3, timeoutSeconds)
        options.totalTimeoutMs = timeoutSeconds * 1000
        options.followRedirects = true
        let transfer = try CurlTransfer(url: url, sink: .memory(limit: limit), options: options)
        switch transfer.perform() {
        case .completed(let status) where status == 200: return transfer.body
        case .completed(let status): throw .http("GET \(url): HTTP \(status)")
        case .transportFailed(let message), .invalidResponse(let message): throw .http("GET \(url): \(message)")
        case .sinkFailed(let error): throw error
        }
    }
}
