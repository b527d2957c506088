#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import Rollouts
import Synchronization
import SystemPackage
import Transfer

/// The embedded store's rollout events: one append-only file per rollout
/// (`events/ID.jsonl`), apart from the journal (compaction keeps no history), fdatasync'd with
/// each write, read back whole on first use and kept in memory after.
final class RolloutEventLog: Sendable {
    let directory: FilePath
    private let cache = Mutex<[String: [RolloutEvent]]>([:])

    init(directory: FilePath) { self.directory = directory }

    private func path(_ rollout: String) -> FilePath { directory.appending("\(rollout).jsonl") }

    /// Appends `notes` (in order) and syncs the files they went to.
    func append(_ notes: [(rollout: String, event: RolloutEvent)]) throws(StoreError) {
        guard !notes.isEmpty else { return }
        let encoder = JSONEncoder()
        var lines: [String: [UInt8]] = [:]
        var order: [String] = []
        for (rollout, event) in notes {
            guard let line = try? encoder.encode(event) else { throw .io("cannot encode a rollout event") }
            if lines[rollout] == nil { order.append(rollout) }
            lines[rollout, default: []] += Array(line) + [UInt8(ascii: "\n")]
        }
        do { try Files.makeDirectory(directory) } catch { throw .io("\(error)") }
        for rollout in order {
            let bytes = lines[rollout]!
            do {
                let descriptor = try FileDescriptor.open(
                    path(rollout), .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
                defer { try? descriptor.close() }
                try descriptor.writeAll(bytes)
                guard fdatasync(descriptor.rawValue) == 0 else { throw Errno(rawValue: errno) }
            } catch {
                throw .io("appending to \(path(rollout)): \(error)")
            }
        }
        cache.withLock { cache in
            for (rollout, event) in notes where cache[rollout] != nil { cache[rollout]?.append(event) }
        }
    }

    /// Events of `rollout` after the first `after`.
    func events(of rollout: String, after: Int) -> [RolloutEvent] {
        if let cached = cache.withLock({ $0[rollout] }) { return Array(cached.dropFirst(after)) }
        let decoder = JSONDecoder()
        let bytes = (try? Files.read(path(rollout), limit: 1 << 30)) ?? []
        let all = bytes.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(RolloutEvent.self, from: Data($0)) }
        let kept = cache.withLock { cache in
            if cache[rollout] == nil { cache[rollout] = all }
            return cache[rollout]!
        }
        return Array(kept.dropFirst(after))
    }

    /// A rollout dropped from the history takes its events along.
    func drop(_ rollout: String) {
        Files.remove(path(rollout))
        _ = cache.withLock { $0.removeValue(forKey: rollout) }
    }
}
