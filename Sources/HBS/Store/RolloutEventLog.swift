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

/// The embedded store's rollout events: one append-only file per rollout (`events/ID.jsonl`),
/// apart from the journal (compaction keeps no history). Best effort, after the journal: the
/// journal is the truth, so an event that cannot be written is counted and logged by the
/// caller, never a reason to undo a change already durable; nor is each write synced (the
/// directory is, when a file is made). One lock covers the files and the cache, so a reader
/// loading a file and a writer appending to it cannot lose an event between them; a line torn
/// by a crash is dropped when read, and the next append starts on a line of its own.
final class RolloutEventLog: Sendable {
    let directory: FilePath
    /// Events by rollout, once read (or written) since start.
    private let cache = Mutex<[String: [RolloutEvent]]>([:])
    /// Appends that failed since start.
    let failures = Atomic<Int>(0)

    init(directory: FilePath) { self.directory = directory }

    private func path(_ rollout: String) -> FilePath { directory.appending("\(rollout).jsonl") }

    /// Appends `notes` in order; false when some could not be written (they stay in memory).
    @discardableResult
    func append(_ notes: [(rollout: String, event: RolloutEvent)]) -> Bool {
        guard !notes.isEmpty else { return true }
        let encoder = JSONEncoder()
        var lines: [String: [UInt8]] = [:]
        var order: [String] = []
        for (rollout, event) in notes {
            guard let line = try? encoder.encode(event) else { continue }
            if lines[rollout] == nil { order.append(rollout) }
            lines[rollout, default: []] += Array(line) + [UInt8(ascii: "\n")]
        }
        return cache.withLock { cache in
            var written = true
            for rollout in order {
                // Loaded first: the cache then holds exactly the file plus what follows.
                if cache[rollout] == nil, let loaded = load(rollout) { cache[rollout] = loaded }
                if !write(lines[rollout]!, to: rollout) { written = false }
            }
            // A file that could not be read stays uncached: the next reader loads it whole.
            for (rollout, event) in notes where cache[rollout] != nil { cache[rollout]!.append(event) }
            if !written { failures.add(1, ordering: .relaxed) }
            return written
        }
    }

    /// Writes whole lines at the end of `rollout`'s file, after a newline if a crash left the
    /// last line torn; syncs the directory when the file is new.
    private func write(_ bytes: [UInt8], to rollout: String) -> Bool {
        let path = path(rollout)
        let existed = Files.exists(path)
        do {
            if !existed { try Files.makeDirectory(directory) }
            let descriptor = try FileDescriptor.open(
                path, .readWrite, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            defer { try? descriptor.close() }
            var prefix: [UInt8] = []
            let size = lseek(descriptor.rawValue, 0, SEEK_END)
            if size > 0 {
                var last: UInt8 = 0
                if pread(descriptor.rawValue, &last, 1, size - 1) == 1, last != UInt8(ascii: "\n") { prefix = [UInt8(ascii: "\n")] }
            }
            try descriptor.writeAll(prefix + bytes)
        } catch {
            return false
        }
        if !existed { Files.syncDirectory(directory) }
        return true
    }

    /// The events in `rollout`'s file (none if it has none); nil when it cannot be read.
    private func load(_ rollout: String) -> [RolloutEvent]? {
        guard Files.exists(path(rollout)) else { return [] }
        guard let bytes = try? Files.read(path(rollout), limit: 1 << 30) else { return nil }
        let decoder = JSONDecoder()
        // Only whole lines: a last line without its newline was torn by a crash.
        let whole = bytes.last == UInt8(ascii: "\n") ? bytes[...] : bytes[..<(bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0)]
        return whole.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(RolloutEvent.self, from: Data($0)) }
    }

    /// Events of `rollout` after the first `after`.
    func events(of rollout: String, after: Int) throws(StoreError) -> [RolloutEvent] {
        let all: [RolloutEvent]? = cache.withLock { cache in
            if let cached = cache[rollout] { return cached }
            guard let loaded = load(rollout) else { return nil }  // not cached: try again next time
            cache[rollout] = loaded
            return loaded
        }
        guard let all else { throw .io("cannot read \(path(rollout))") }
        return Array(all.dropFirst(max(0, after)))
    }

    /// A rollout dropped from the history takes its events along.
    func drop(_ rollout: String) {
        cache.withLock { cache in
            Files.remove(path(rollout))
            cache[rollout] = nil
        }
    }

    /// Removes the files of rollouts the state no longer has (dropped around a crash).
    func keepOnly(_ rollouts: Set<String>) {
        for entry in Files.entries(directory) where entry.hasSuffix(".jsonl") && !rollouts.contains(String(entry.dropLast(6))) {
            Files.remove(directory.appending(entry))
        }
    }
}
