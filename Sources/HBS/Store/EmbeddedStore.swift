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
import Wire

/// The default store: the state in memory, made durable in a data directory as a snapshot
/// (`state.json`, written by rename) and a journal of the events since (`journal-G.jsonl`, one
/// line per event, fdatasync'd before `append` returns). The snapshot names its generation G,
/// so a crash between writing a snapshot and starting its journal never replays old events
/// over newer state. Load replays and compacts; a torn last line (a kill mid-write) was never
/// acknowledged and is dropped.
public final class EmbeddedStore: FleetStore {
    public let directory: FilePath
    /// Journal lines after which the next append compacts into a new snapshot.
    public let compactAfter: Int
    private let journal = Mutex<Journal?>(nil)
    /// What happened to each rollout, for operators (`events/ID.jsonl`).
    private let eventLog: RolloutEventLog

    private struct Journal {
        var descriptor: FileDescriptor
        var lines: Int
        var generation: Int
    }

    private struct Snapshot: Codable {
        var generation: Int
        var state: FleetState
    }

    public init(directory: FilePath, compactAfter: Int = 50_000) {
        self.directory = directory
        self.compactAfter = compactAfter
        eventLog = RolloutEventLog(directory: directory.appending("events"))
    }

    private var snapshotPath: FilePath { directory.appending("state.json") }
    private func journalPath(_ generation: Int) -> FilePath { directory.appending("journal-\(generation).jsonl") }

    public func load() throws(StoreError) -> FleetState {
        do { try Files.makeDirectory(directory) } catch { throw .io("\(error)") }
        var snapshot = Snapshot(generation: 0, state: FleetState())
        if let bytes = try readIfPresent(snapshotPath) {
            do { snapshot = try JSONDecoder().decode(Snapshot.self, from: Data(bytes)) } catch {
                throw .corrupt("\(snapshotPath): \(error)")
            }
        }
        var state = snapshot.state
        let journalPath = journalPath(snapshot.generation)
        if let bytes = try readIfPresent(journalPath) {
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
            for (index, line) in lines.enumerated() {
                do {
                    state.apply(try JSONDecoder().decode(FleetEvent.self, from: Data(line)))
                } catch where index == lines.count - 1 {
                    break  // torn by a crash mid-write: never acknowledged
                } catch {
                    throw .corrupt("\(journalPath) line \(index + 1): \(error)")
                }
            }
        }
        journal.withLock { $0 = Journal(descriptor: FileDescriptor(rawValue: -1), lines: 0, generation: snapshot.generation) }
        try compact(state)
        eventLog.keepOnly(Set(state.rollouts.keys))
        return state
    }

    public func prepare(_ events: [FleetEvent], state: FleetState) throws(StoreError) -> DurableWrite {
        // Only what needs the state is done here, on the control plane's actor; the encoding
        // runs in the write, off it (at a rollout's start it was half the actor's time).
        let count = events.count { event in
            if case .noted = event { return false }
            return true
        }
        // The state is kept for a snapshot only when this write makes the journal long enough
        // to compact (holding it otherwise would make the next change copy the fleet).
        let lines = journal.withLock { $0?.lines ?? 0 }
        let snapshot = lines + count >= compactAfter ? state : nil
        return { [self, events, count] () throws(StoreError) in
            let encoder = JSONEncoder()
            var bytes: [UInt8] = []
            var notes: [(rollout: String, event: RolloutEvent)] = []
            var dropped: [String] = []
            for event in events {
                if case .noted(let rollout, let note) = event {
                    notes.append((rollout, note))
                    continue
                }
                if case .rolloutDropped(let id) = event { dropped.append(id) }
                guard let line = try? encoder.encode(event) else { throw .io("cannot encode \(event)") }
                bytes += line
                bytes.append(UInt8(ascii: "\n"))
            }
            // The change first, then what it meant: a crash between loses a note, never
            // invents one; and a note that cannot be written never undoes a durable change.
            if count > 0 { try write(bytes, lines: count, thenCompactTo: snapshot) }
            eventLog.append(notes)
            for id in dropped { eventLog.drop(id) }
        }
    }

    public func events(of rollout: String, after: Int) throws(StoreError) -> [RolloutEvent] {
        try eventLog.events(of: rollout, after: after)
    }

    /// Appends `bytes` (`lines` events) to the journal and fdatasyncs it; compacts after when
    /// given the state.
    private func write(_ bytes: [UInt8], lines count: Int, thenCompactTo snapshot: FleetState?) throws(StoreError) {
        try journal.withLock { (journal: inout Journal?) throws(StoreError) in
            guard let descriptor = journal?.descriptor, descriptor.rawValue >= 0 else { throw .io("append before load") }
            // A write that fails half-way (a full disk) is cut back off, so no torn line ever
            // sits in the middle of the journal.
            let end = lseek(descriptor.rawValue, 0, SEEK_END)
            do { _ = try descriptor.writeAll(bytes) } catch {
                if end >= 0 { _ = ftruncate(descriptor.rawValue, end) }
                throw .io("appending to the journal in \(directory): \(error)")
            }
            guard fdatasync(descriptor.rawValue) == 0 else {
                let failure = Errno(rawValue: errno)
                if end >= 0 { _ = ftruncate(descriptor.rawValue, end) }
                throw .io("fdatasync of the journal in \(directory): \(failure)")
            }
            journal?.lines += count
        }
        if let snapshot { try compact(snapshot) }
    }

    /// A file's bytes, nil only when it does not exist; any other failure is an error (an
    /// unreadable snapshot must never be taken for an empty one and compacted away).
    private func readIfPresent(_ path: FilePath) throws(StoreError) -> [UInt8]? {
        do { return try Files.read(path, limit: 1 << 30) } catch {
            if Files.isMissing(error) { return nil }
            throw .io("reading \(path): \(error)")
        }
    }

    /// Writes `state` as the snapshot of the next generation, starts its empty journal, and
    /// removes the previous generation's.
    private func compact(_ state: FleetState) throws(StoreError) {
        let previous = journal.withLock { $0?.generation } ?? 0
        let snapshot = Snapshot(generation: previous + 1, state: state)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let bytes = try? encoder.encode(snapshot) else { throw .io("cannot encode the state") }
        do {
            // The new journal exists before the snapshot naming it: whatever fails, appends never
            // go to a journal that load would not read.
            let descriptor = try FileDescriptor.open(
                journalPath(snapshot.generation), .writeOnly, options: [.create, .append, .truncate], permissions: [.ownerReadWrite])
            Files.syncDirectory(directory)
            do { try Files.writeAtomically(Array(bytes), to: snapshotPath) } catch {
                try? descriptor.close()
                throw error
            }
            journal.withLock { journal in
                if let old = journal?.descriptor, old.rawValue >= 0 { try? old.close() }
                journal = Journal(descriptor: descriptor, lines: 0, generation: snapshot.generation)
            }
            Files.remove(journalPath(previous))
        } catch {
            throw .io("compacting into \(snapshotPath): \(error)")
        }
    }
}
