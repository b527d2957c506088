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
/// journal is the truth, so an event that cannot be written is lost (a reader of the file
/// misses it), never a reason to undo a change already durable; nor is each write synced (the
/// directory is, when a file is made). One lock covers the files and the cache, so a reader
/// loading a file and a writer appending to it cannot lose an event between them; a line torn
/// by a crash is dropped when read, and the first append after a start begins a line of its own.
/// Only rollouts someone reads are held in memory.
final class RolloutEventLog: Sendable {
    private struct State {
        /// Events by rollout, of those read since start (then kept up to date by appends).
        var cache: [String: [RolloutEvent]] = [:]
        /// Files whose last line was checked since start (a crash may have torn it).
        var checked: Set<String> = []
    }

    let directory: FilePath
    private let state = Mutex(State())

    init(directory: FilePath) { self.directory = directory }

    private func path(_ rollout: String) -> FilePath { directory.appending("\(rollout).jsonl") }

    /// Appends `notes` in order.
    func append(_ notes: [(rollout: String, event: RolloutEvent)]) {
        guard !notes.isEmpty else { return }
        let encoder = JSONEncoder()
        var lines: [String: [UInt8]] = [:]
        var order: [String] = []
        for (rollout, event) in notes {
            guard let line = try? encoder.encode(event) else { continue }
            if lines[rollout] == nil { order.append(rollout) }
            lines[rollout, default: []] += Array(line) + [UInt8(ascii: "\n")]
        }
        state.withLock { state in
            for rollout in order {
                let first = state.checked.insert(rollout).inserted
                write(lines[rollout]!, to: rollout, checkingTheLastLine: first)
            }
            // A rollout nobody has read stays on disk only: its first reader loads it whole.
            for (rollout, event) in notes where state.cache[rollout] != nil { state.cache[rollout]!.append(event) }
        }
    }

    /// Writes whole lines at the end of `rollout`'s file (after a newline, the first time
    /// since start, if a crash left the last line torn); syncs the directory when the file is new.
    private func write(_ bytes: [UInt8], to rollout: String, checkingTheLastLine check: Bool) {
        let path = path(rollout)
        let existed = !check || Files.exists(path)
        do {
            if !existed { try Files.makeDirectory(directory) }
            let descriptor = try FileDescriptor.open(
                path, .readWrite, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead, .otherRead])
            defer { try? descriptor.close() }
            var prefix: [UInt8] = []
            if check, case let size = lseek(descriptor.rawValue, 0, SEEK_END), size > 0 {
                var last: UInt8 = 0
                if pread(descriptor.rawValue, &last, 1, size - 1) == 1, last != UInt8(ascii: "\n") { prefix = [UInt8(ascii: "\n")] }
            }
            try descriptor.writeAll(prefix + bytes)
        } catch {
            return  // lost, as the type says: the journal holds the change
        }
        if !existed { Files.syncDirectory(directory) }
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
        let all: [RolloutEvent]? = state.withLock { state in
            if let cached = state.cache[rollout] { return cached }
            guard let loaded = load(rollout) else { return nil }  // not cached: try again next time
            state.cache[rollout] = loaded
            return loaded
        }
        guard let all else { throw .io("cannot read \(path(rollout))") }
        return Array(all.dropFirst(max(0, after)))
    }

    /// A rollout dropped from the history takes its events along.
    func drop(_ rollout: String) {
        state.withLock { state in
            Files.remove(path(rollout))
            state.cache[rollout] = nil
            state.checked.remove(rollout)
        }
    }

    /// Removes the files of rollouts the state no longer has (dropped around a crash).
    func keepOnly(_ rollouts: Set<String>) {
        for entry in Files.entries(directory) where entry.hasSuffix(".jsonl") && !rollouts.contains(String(entry.dropLast(6))) {
            Files.remove(directory.appending(entry))
        }
    }
}
