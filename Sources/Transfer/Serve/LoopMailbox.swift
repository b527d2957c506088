import NIOCore
import Synchronization

/// Work for one event loop posted from other threads, run in one hop however much arrives
/// meanwhile: a piece verified on the downloader's thread is news for every stream watching
/// this host (dozens), and one wake-up of the loop for all of them costs far less than one each.
final class LoopMailbox: Sendable {
    let eventLoop: any EventLoop
    private let pending = Mutex<(work: [@Sendable () -> Void], scheduled: Bool)>(([], false))

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// Runs `work` on the loop, after whatever was posted before it.
    func post(_ work: @escaping @Sendable () -> Void) {
        let schedule = pending.withLock { pending in
            pending.work.append(work)
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        if schedule { eventLoop.execute { self.drain() } }
    }

    private func drain() {
        let work = pending.withLock { pending in
            defer { pending = ([], false) }
            return pending.work
        }
        for item in work { item() }
    }
}
