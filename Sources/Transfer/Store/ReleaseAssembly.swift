import Swarm
import Synchronization
import SystemPackage
import Wire

/// One release being put together on disk from verified pieces.
///
/// Pieces are written into `.partial/FILE.part` and recorded in `.partial/FILE.pieces` (a byte
/// per piece) once their SHA-256 matches the manifest. A download killed at any moment resumes
/// with only the missing pieces: on reopening, every recorded piece is hashed again, so a torn
/// write or a lost page cannot pass as verified. A finished file is fsynced, checked whole,
/// and renamed to its final name; `manifest.json` is written last and marks the release complete.
///
/// A piece counts as verified in one place only, `accept(_:sha256:)`, which compares the
/// digest with the signed manifest itself; every verified piece is told to `availability`, so
/// peers streaming this host's availability hear of it at once.
public final class ReleaseAssembly: Sendable {
    static let manifestFileName = "manifest.json"
    static let partialDirectoryName = ".partial"

    public let manifest: Manifest
    public let directory: FilePath
    /// The pieces verified here, in order, and who listens (peers' availability streams).
    public let availability: AvailabilityLog
    /// The index over the whole release of each file's first piece (files in manifest order).
    private let fileOffsets: [Int]
    private let partialDirectory: FilePath
    private let state: Mutex<State>

    private struct FileState {
        var verified: [Bool]
        var verifiedCount: Int
        var descriptor: FileDescriptor?
        var record: FileDescriptor?
        var isFinal: Bool
    }

    private struct State {
        var files: [FileState]
        var isComplete: Bool
    }

    init(manifest: Manifest, directory: FilePath, availability: AvailabilityLog = AvailabilityLog()) throws(TransferError) {
        self.manifest = manifest
        self.directory = directory
        self.availability = availability
        self.partialDirectory = directory.appending(Self.partialDirectoryName)
        var offsets: [Int] = [], total = 0
        for file in manifest.files {
            offsets.append(total)
            total += file.pieces.count
        }
        self.fileOffsets = offsets

        if let stored = try? Files.read(directory.appending(Self.manifestFileName)) {
            guard let existing = try? Manifest.decode(stored), existing.sameContent(as: manifest) else {
                throw .conflict("\(directory) already holds a different release \(manifest.name) \(manifest.version)")
            }
            // Re-signed (new times, new signatures, the same bytes): the newer manifest is kept,
            // never an older signing a stale mirror still serves.
            if manifest.isNewerSigning(than: existing) {
                try Files.writeAtomically(Array(manifest.encoded()), to: directory.appending(Self.manifestFileName))
            }
            let files = manifest.files.map {
                FileState(verified: Array(repeating: true, count: $0.pieces.count), verifiedCount: $0.pieces.count,
                          descriptor: nil, record: nil, isFinal: true)
            }
            state = Mutex(State(files: files, isComplete: true))
            availability.attach(pieceCount: manifest.totalPieces, verified: Array(0..<manifest.totalPieces), complete: true)
            return
        }

        try Files.makeDirectory(partialDirectory)
        let partialManifest = partialDirectory.appending(Self.manifestFileName)
        let partial = (try? Files.read(partialManifest)).flatMap { try? Manifest.decode($0) }
        let sameRelease = partial.map { $0.sameContent(as: manifest) } ?? false
        if sameRelease, let partial, manifest.isNewerSigning(than: partial) {
            try Files.writeAtomically(Array(manifest.encoded()), to: partialManifest)
        }
        if !sameRelease {
            // Pieces of some other build of this version are worthless: start clean.
            Files.removeFlatDirectory(partialDirectory)
            try Files.makeDirectory(partialDirectory)
            try Files.writeAtomically(Array(manifest.encoded()), to: partialManifest)
        }

        var files: [FileState] = []
        do throws(TransferError) {
            for file in manifest.files {
                files.append(try Self.openFile(file, pieceSize: manifest.pieceSize, directory: directory,
                                               partial: partialDirectory, resume: sameRelease))
            }
        } catch {
            for file in files { try? file.descriptor?.close(); try? file.record?.close() }
            throw error
        }
        state = Mutex(State(files: files, isComplete: false))
        var verified: [Int] = []
        for (index, file) in files.enumerated() {
            for piece in file.verified.indices where file.isFinal || file.verified[piece] { verified.append(offsets[index] + piece) }
        }
        availability.attach(pieceCount: manifest.totalPieces, verified: verified, complete: false)
    }

    deinit {
        state.withLock { state in
            for file in state.files { try? file.descriptor?.close(); try? file.record?.close() }
        }
    }

    /// Opens (or creates) one file's part and record, keeping only pieces that hash right.
    private static func openFile(
        _ file: ReleaseFile, pieceSize: Int64, directory: FilePath, partial: FilePath, resume: Bool
    ) throws(TransferError) -> FileState {
        let count = file.pieces.count
        let finalPath = directory.appending(file.name)
        if resume, Files.size(finalPath) == file.size, (try? Digest.file(at: finalPath).sha256) == file.sha256 {
            // Renamed into place before a crash stopped the rest.
            return FileState(verified: Array(repeating: true, count: count), verifiedCount: count,
                             descriptor: nil, record: nil, isFinal: true)
        }
        let partPath = partial.appending(file.name + ".part")
        let recordPath = partial.appending(file.name + ".pieces")
        let descriptor = try Files.open(partPath, .readWrite, create: true)
        let record: FileDescriptor
        do throws(TransferError) {
            try Files.reserve(descriptor, size: file.size, path: partPath)
            record = try Files.open(recordPath, .readWrite, create: true)
        } catch {
            try? descriptor.close()
            throw error
        }
        var verified = Array(repeating: false, count: count)
        var recorded = [UInt8](repeating: 0, count: count)
        if resume, count > 0 {
            let n = (try? recorded.withUnsafeMutableBytes { try record.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
            if n < count { recorded.replaceSubrange(n..<count, with: repeatElement(0, count: count - n)) }
            let hasher = Hasher(.sha256)
            for index in 0..<count where recorded[index] == 1 {
                let range = file.pieceRange(index, pieceSize: pieceSize)
                let read = (try? Hasher.feed([hasher], from: descriptor, offset: range.lowerBound, length: Int64(range.count))) ?? -1
                if read == Int64(range.count) && Self.matches(hasher.finalizeHex(), piece: index, of: file) {
                    verified[index] = true
                } else {
                    _ = hasher.finalize()
                    recorded[index] = 0
                }
            }
        } else {
            recorded = Array(repeating: 0, count: count)
        }
        do { _ = try record.writeAll(toAbsoluteOffset: 0, recorded) } catch {
            try? descriptor.close(); try? record.close()
            throw .io("writing \(recordPath)", errno: error)
        }
        let verifiedCount = verified.lazy.filter { $0 }.count
        return FileState(verified: verified, verifiedCount: verifiedCount, descriptor: descriptor, record: record, isFinal: false)
    }

    public var isComplete: Bool { state.withLock { $0.isComplete } }

    /// Pieces not yet verified, file by file, in order.
    public func missingPieces() -> [PieceRef] {
        state.withLock { state in
            state.files.enumerated().flatMap { fileIndex, file in
                file.verified.indices.filter { !file.verified[$0] }.map { PieceRef(file: fileIndex, index: $0) }
            }
        }
    }

    public var verifiedBytes: Int64 {
        state.withLock { state in
            var total: Int64 = 0
            for (fileIndex, file) in state.files.enumerated() {
                let releaseFile = manifest.files[fileIndex]
                for index in file.verified.indices where file.verified[index] {
                    total += Int64(releaseFile.pieceRange(index, pieceSize: manifest.pieceSize).count)
                }
            }
            return total
        }
    }

    /// The verified pieces, files in manifest order: what a peer may ask this host for.
    public var verifiedPieces: PieceSet { availability.current }

    /// The index over the whole release (files in manifest order) of `piece`.
    public func globalIndex(of piece: PieceRef) -> Int { fileOffsets[piece.file] + piece.index }

    /// The piece at `index` over the whole release.
    public func piece(at index: Int) -> PieceRef {
        let file = fileOffsets.lastIndex { $0 <= index } ?? 0
        return PieceRef(file: file, index: index - fileOffsets[file])
    }

    /// Pieces verified so far.
    public var verifiedPieceCount: Int {
        state.withLock { state in
            state.files.enumerated().reduce(0) { total, entry in
                total + (entry.element.isFinal ? manifest.files[entry.offset].pieces.count : entry.element.verifiedCount)
            }
        }
    }

    /// The byte range of a piece within its file.
    public func range(of piece: PieceRef) -> Range<Int64> {
        manifest.files[piece.file].pieceRange(piece.index, pieceSize: manifest.pieceSize)
    }

    /// The open part file a piece's bytes are written into (nil once the file is final).
    public func partDescriptor(for piece: PieceRef) -> FileDescriptor? {
        state.withLock { $0.files[piece.file].descriptor }
    }

    /// Writes a piece's bytes, received whole in memory (a second copy), into its part file.
    /// Nothing counts them verified: `accept` does that.
    public func write(_ bytes: [UInt8], of piece: PieceRef) throws(TransferError) {
        guard let descriptor = partDescriptor(for: piece) else { return }
        let offset = range(of: piece).lowerBound
        do { _ = try descriptor.writeAll(toAbsoluteOffset: offset, bytes) } catch {
            throw .io("writing \(piece) of \(manifest.name) \(manifest.version)", errno: error)
        }
    }

    /// A piece whose bytes were written to its part file, and hashed on their way to `sha256`:
    /// verified if that is the SHA-256 the signed manifest gives the piece, and then recorded
    /// (its bytes start on their way to disk, so the fsync at the end has little left to do)
    /// and told to `availability`. False, and nothing recorded, if it is not.
    public func accept(_ piece: PieceRef, sha256: String) throws(TransferError) -> Bool {
        guard Self.matches(sha256, piece: piece.index, of: manifest.files[piece.file]) else { return false }
        try markVerified(piece)
        return true
    }

    /// The one comparison that makes a piece verified: its SHA-256 is the signed manifest's.
    public static func matches(_ sha256: String, piece: Int, of file: ReleaseFile) -> Bool {
        piece < file.pieces.count && sha256 == file.pieces[piece]
    }

    /// Records a piece as verified; only `accept` calls it, having compared the hash.
    private func markVerified(_ piece: PieceRef) throws(TransferError) {
        let files: (record: FileDescriptor, part: FileDescriptor)? = state.withLock { state in
            guard !state.files[piece.file].verified[piece.index],
                  let record = state.files[piece.file].record, let part = state.files[piece.file].descriptor
            else { return nil }
            state.files[piece.file].verified[piece.index] = true
            state.files[piece.file].verifiedCount += 1
            return (record, part)
        }
        guard let files else { return }
        do { _ = try files.record.writeAll(toAbsoluteOffset: Int64(piece.index), [1]) } catch {
            throw .io("recording \(piece) of \(manifest.name) \(manifest.version)", errno: error)
        }
        let range = range(of: piece)
        Files.startWriteback(files.part, offset: range.lowerBound, length: Int64(range.count))
        availability.record(globalIndex(of: piece))
    }

    /// Whether every byte of `range` in file `name` lies in verified pieces; and where to read them.
    /// This is what lets a peer relay pieces before it holds the whole release.
    public func servable(file name: String, range: ClosedRange<Int64>) -> FilePath? {
        guard let fileIndex = manifest.files.firstIndex(where: { $0.name == name }) else { return nil }
        let file = manifest.files[fileIndex]
        guard range.lowerBound >= 0, range.upperBound < file.size else { return nil }
        let first = Int(range.lowerBound / manifest.pieceSize), last = Int(range.upperBound / manifest.pieceSize)
        return state.withLock { state in
            let fileState = state.files[fileIndex]
            if fileState.isFinal { return directory.appending(name) }
            guard (first...last).allSatisfy({ fileState.verified[$0] }) else { return nil }
            return partialDirectory.appending(name + ".part")
        }
    }

    /// Once every piece is verified: each file is fsynced, given its mode and renamed to its
    /// final name; then the manifest is written and `.partial` removed.
    ///
    /// Files are not hashed whole again: every byte already matched a piece hash of the signed
    /// manifest on its way in (and again on resume), and a second pass would read the same
    /// page cache. Whole-file SHA-256 is what `Digest.file` is for, where a caller wants it.
    public func finalize() throws(TransferError) {
        let pending: [(Int, FileDescriptor?)] = state.withLock { state in
            state.files.enumerated().filter { !$0.element.isFinal }.map { ($0.offset, $0.element.descriptor) }
        }
        let incomplete = state.withLock { state in
            manifest.files.indices.filter { state.files[$0].verifiedCount < manifest.files[$0].pieces.count }
        }
        guard incomplete.isEmpty else {
            let names = incomplete.map { manifest.files[$0].name }.joined(separator: ", ")
            throw .conflict("\(manifest.name) \(manifest.version) is not complete: \(names) still have unverified pieces")
        }
        for (fileIndex, descriptor) in pending {
            let file = manifest.files[fileIndex]
            guard let descriptor else { continue }
            let partPath = partialDirectory.appending(file.name + ".part")
            try Files.sync(descriptor, path: partPath)
            try Files.chmod(partPath, mode: file.mode)
            try Files.rename(partPath, to: directory.appending(file.name))
            state.withLock { state in
                try? state.files[fileIndex].descriptor?.close()
                try? state.files[fileIndex].record?.close()
                state.files[fileIndex].descriptor = nil
                state.files[fileIndex].record = nil
                state.files[fileIndex].isFinal = true
            }
        }
        Files.syncDirectory(directory)
        try Files.writeAtomically(Array(manifest.encoded()), to: directory.appending(Self.manifestFileName))
        Files.removeFlatDirectory(partialDirectory)
        state.withLock { $0.isComplete = true }
        availability.markComplete()
    }
}
