import CCurl
import CLinux
import Glibc
import Transfer
import Wire

/// libcurl's multi interface: many transfers on one thread, driven by `poll` and `perform`.
/// Not thread-safe; one owner thread drives it (the downloader's).
///
/// It runs on libcurl's socket interface with an epoll set of its own: libcurl says which
/// sockets to watch and when its next timeout is due, `poll` waits on exactly those, and
/// `perform` hands libcurl only the sockets that are ready. A download holds a stream open to
/// every peer (dozens) besides its pieces; asking libcurl to look at each of them on every
/// wake-up (`curl_multi_perform`) cost more than everything else the agent does.
final class CurlMulti {
    private let handle: UnsafeMutableRawPointer
    private let epoll: Int32
    /// A second epoll set for background transfers' sockets, itself watched by `epoll` unless
    /// they are held: holding them is one call, whatever their number.
    private let background: Int32
    private var transfers: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    /// Sockets libcurl asked us to watch, for what, and whether a background transfer's.
    private var watched: [curl_socket_t: (events: UInt32, background: Bool)] = [:]
    /// Background transfers' sockets are left out of the epoll set (their bytes wait in the
    /// kernel) while this is set.
    private var holding = false
    var isHoldingBackground: Bool { holding }
    /// When libcurl wants `CURL_SOCKET_TIMEOUT` next; nil: no timer.
    private var timerDue: ContinuousClock.Instant?
    /// Sockets `poll` found ready, for `perform`.
    private var ready: [(socket: curl_socket_t, events: UInt32)] = []
    private var events = [epoll_event](repeating: epoll_event(), count: 64)

    init() throws(TransferError) {
        Curl.initializeOnce()
        guard let handle = curl_multi_init() else { throw .http("curl_multi_init failed") }
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC)), background = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0, background >= 0 else {
            curl_multi_cleanup(handle)
            if epoll >= 0 { close(epoll) }
            throw .http("epoll_create1 failed: errno \(errno)")
        }
        self.handle = handle
        self.epoll = epoll
        self.background = background
        var inner = epoll_event()
        inner.events = EPOLLIN.rawValue
        inner.data.fd = background
        epoll_ctl(epoll, EPOLL_CTL_ADD, background, &inner)
        // Reuse connections to a source across pieces: one per transfer in flight, at most.
        fledge_curl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, 64)
        let me = Unmanaged.passUnretained(self).toOpaque()
        fledge_curl_multi_setopt_socket_cb(handle, curlSocketCallback)
        fledge_curl_multi_setopt_pointer(handle, CURLMOPT_SOCKETDATA, me)
        fledge_curl_multi_setopt_timer_cb(handle, curlTimerCallback)
        fledge_curl_multi_setopt_pointer(handle, CURLMOPT_TIMERDATA, me)
    }

    deinit {
        for easy in transfers.keys { curl_multi_remove_handle(handle, easy) }
        curl_multi_cleanup(handle)
        close(epoll)
        close(background)
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

    /// Blocks until a watched socket is ready, libcurl's timer is due, or `timeoutMs` passes.
    func poll(timeoutMs: Int32) {
        var timeout = timeoutMs
        if let timerDue {
            timeout = min(timeout, Int32(max(0, min(Int(Int32.max), (timerDue - .now).milliseconds))))
        }
        ready.removeAll(keepingCapacity: true)
        var backgroundReady = false
        for (socket, events) in wait(epoll, timeout: timeout) {
            if socket == background { backgroundReady = true } else { ready.append((socket, events)) }
        }
        if backgroundReady { ready += wait(background, timeout: 0) }
    }

    private func wait(_ set: Int32, timeout: Int32) -> [(curl_socket_t, UInt32)] {
        let count = events.withUnsafeMutableBufferPointer { epoll_wait(set, $0.baseAddress, Int32($0.count), timeout) }
        return (0..<Int(max(0, count))).map { (curl_socket_t(events[$0].data.fd), events[$0].events) }
    }

    /// Lets libcurl move the transfers whose sockets are ready, and those whose timer is due.
    func perform() {
        var running: Int32 = 0
        for (socket, events) in ready {
            var mask: Int32 = 0
            if events & EPOLLIN.rawValue != 0 { mask |= CURL_CSELECT_IN }
            if events & EPOLLOUT.rawValue != 0 { mask |= CURL_CSELECT_OUT }
            if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { mask |= CURL_CSELECT_ERR }
            curl_multi_socket_action(handle, socket, mask, &running)
        }
        ready.removeAll(keepingCapacity: true)
        if let due = timerDue, due <= .now {
            timerDue = nil
            curl_multi_socket_action(handle, CURL_SOCKET_TIMEOUT, 0, &running)
        }
    }

    /// Leaves background transfers (availability streams) unread while `hold` is set, so news
    /// nobody can act on yet (every piece slot is busy) does not wake the thread; their bytes
    /// wait in the kernel and are read the moment the hold is lifted.
    func holdBackground(_ hold: Bool) {
        guard hold != holding else { return }
        holding = hold
        var inner = epoll_event()
        inner.events = EPOLLIN.rawValue
        inner.data.fd = background
        epoll_ctl(epoll, hold ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, background, &inner)
    }

    /// libcurl's socket callback: start, change or stop watching `socket` for `easy`.
    fileprivate func watch(_ socket: curl_socket_t, _ what: Int32, easy: UnsafeMutableRawPointer?) {
        var event = epoll_event()
        event.data.fd = socket
        guard what != CURL_POLL_REMOVE else {
            if let known = watched.removeValue(forKey: socket) {
                epoll_ctl(known.background ? background : epoll, EPOLL_CTL_DEL, socket, &event)
            }
            return
        }
        event.events = switch what {
        case CURL_POLL_IN: EPOLLIN.rawValue
        case CURL_POLL_OUT: EPOLLOUT.rawValue
        default: EPOLLIN.rawValue | EPOLLOUT.rawValue
        }
        let isBackground = easy.flatMap { transfers[$0]?.isBackground } ?? false
        if let known = watched[socket], known.background != isBackground {
            epoll_ctl(known.background ? background : epoll, EPOLL_CTL_DEL, socket, &event)
            watched[socket] = nil
        }
        let set = isBackground ? background : epoll
        let operation = watched[socket] == nil ? EPOLL_CTL_ADD : EPOLL_CTL_MOD
        // A socket closed without a word left the set by itself; a number reused may be there.
        if epoll_ctl(set, operation, socket, &event) != 0 {
            if errno == EEXIST { epoll_ctl(set, EPOLL_CTL_MOD, socket, &event) }
            if errno == ENOENT { epoll_ctl(set, EPOLL_CTL_ADD, socket, &event) }
        }
        watched[socket] = (event.events, isBackground)
    }

    /// libcurl's timer callback: its next timeout, in milliseconds (-1: none).
    fileprivate func timer(_ milliseconds: Int) {
        timerDue = milliseconds < 0 ? nil : .now + .milliseconds(milliseconds)
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

private let curlSocketCallback: curl_socket_callback = { easy, socket, what, userdata, _ in
    guard let userdata else { return 0 }
    Unmanaged<CurlMulti>.fromOpaque(userdata).takeUnretainedValue().watch(socket, what, easy: easy)
    return 0
}

private let curlTimerCallback: curl_multi_timer_callback = { _, milliseconds, userdata in
    guard let userdata else { return 0 }
    Unmanaged<CurlMulti>.fromOpaque(userdata).takeUnretainedValue().timer(milliseconds)
    return 0
}
