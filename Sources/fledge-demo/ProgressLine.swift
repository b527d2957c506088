import Foundation
import LocalFleet
import Synchronization

/// The live progress line on stderr: hosts by state, bytes the origin and the peers served,
/// and the rate over the last two seconds. Rewritten in place on a terminal; elsewhere one
/// line a second.
final class ProgressLine: Sendable {
    private let hosts: Int
    private let terminal = isatty(2) != 0
    private let state = Mutex<(history: [(seconds: Double, bytes: Int64)], printedAt: Double)>(([], -1))

    init(hosts: Int) { self.hosts = hosts }

    func show(_ sample: FleetSample) {
        let bytes = sample.originBytes + sample.peerBytes
        let (rate, due): (Double, Bool) = state.withLock { state in
            state.history.append((sample.seconds, bytes))
            state.history.removeAll { $0.seconds < sample.seconds - 2 }
            let first = state.history.first!
            let rate = sample.seconds > first.seconds ? Double(bytes - first.bytes) / (sample.seconds - first.seconds) : 0
            let due = terminal || sample.seconds - state.printedAt >= 1
            if due { state.printedAt = sample.seconds }
            return (rate, due)
        }
        guard due else { return }
        let counts = sample.progress.counts
        let busy = ["admitted", "downloading", "installing", "restarting", "confirming"].reduce(0) { $0 + counts[$1, default: 0] }
        var text = String(format: "%6.1fs  done %d/%d  upgrading %d  pending %d", sample.seconds, sample.progress.done, hosts, busy,
                          counts["pending", default: 0] + counts["absent", default: 0])
        if let failed = counts["failed"], failed > 0 { text += "  failed \(failed)" }
        text += String(format: "  |  from CDN %.1f MB  from peers %.1f MB  |  %.1f MB/s", Double(sample.originBytes) / 1e6,
                       Double(sample.peerBytes) / 1e6, rate / 1e6)
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    /// Ends the line on a terminal.
    func finish() { if terminal { FileHandle.standardError.write(Data("\n".utf8)) } }
}
