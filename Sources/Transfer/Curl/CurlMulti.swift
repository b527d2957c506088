import CCurl

/// libcurl's multi interface: many transfers on one thread, driven by `perform` and `poll`.
/// Not thread-safe; one owner thread drives it (the downloader's).
final class CurlMulti {
    private let handle: UnsafeMutableRawPointer
    private var transfers: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    init() throws(TransferError) {
        Curl.initializeOnce()
        guard let handle = curl_multi_init() else { throw .http("curl_multi_init failed") }
        self.handle = handle
        // Reuse connections to a source across pieces: one per transfer in flight, at most.
        fledge_curl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, 64)
    }

    deinit {
        for easy in transfers.keys { curl_multi_remove_handle(handle, easy) }
        curl_multi_cleanup(handle)
    }

    var count: Int { transfers.count }

    func add(_ transfer: CurlTransfer) {
        transfers[transfer.handle] = transfer
        curl_multi_add_handle(handle, transfer.handle)
    }

    func remove(_ transfer: CurlTransfer) {
        guard transfers.removeValue(forKey: transfer.handle) != nil else { return }
        curl_multi_remove_handle(handle, transfer.handle)
    }

    /// Moves every transfer as far as it can go without blocking.
    func perform() {
        var running: Int32 = 0
        while curl_multi_perform(handle, &running) == CURLM_CALL_MULTI_PERFORM {}
    }

    /// Blocks until a socket is ready or `timeoutMs` passes.
    func poll(timeoutMs: Int32) {
        var ready: Int32 = 0
        curl_multi_poll(handle, nil, 0, timeoutMs, &ready)
    }

    /// Transfers that ended since the last call, removed from the multi handle.
    func takeFinished() -> [(CurlTransfer, CurlOutcome)] {
        var finished: [(CurlTransfer, CurlOutcome)] = []
        var left: Int32 = 0
        while let message = curl_multi_info_read(handle, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                let transfer = transfers[easy]
            else { continue }
            let code = message.pointee.data.result
            finished.append((transfer, transfer.outcome(for: code)))
        }
        for (transfer, _) in finished { remove(transfer) }
        return finished
    }
}
