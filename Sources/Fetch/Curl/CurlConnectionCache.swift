import CCurl

/// Connections kept open between requests to the same server: libcurl's connection cache (and
/// TLS sessions, and resolved names), shared by the requests that name it. An agent's beats go
/// over one kept-alive connection instead of a new one per beat: no TCP or TLS handshake per
/// beat, and HBS does not open and tear down a connection (and its task) a beat, which at
/// tens of thousands of connections cost it more than the beats (`bench/wake_up.py`).
/// Not thread-safe: use it from one thread at a time (the heartbeat loop's own).
public final class CurlConnectionCache: @unchecked Sendable {
    /// Nil if libcurl could not make one: requests then make their own connections.
    let share: UnsafeMutableRawPointer?

    public init() {
        Curl.initializeOnce()
        share = curl_share_init()
        for data in [CURL_LOCK_DATA_CONNECT, CURL_LOCK_DATA_SSL_SESSION, CURL_LOCK_DATA_DNS] {
            _ = fledge_curl_share_setopt_long(share, CURLSHOPT_SHARE, Int(data.rawValue))
        }
    }

    deinit { curl_share_cleanup(share) }
}
