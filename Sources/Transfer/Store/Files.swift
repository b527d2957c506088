import CLinux
import Glibc
import SystemPackage

/// The few POSIX file steps that make a write durable and a name appear atomically, shared by
/// the store, the downloaders and the publisher. Every failure names the path and the step.
public enum Files {
    public static func makeDirectory(_ path: FilePath) throws(TransferError) {
        var current = FilePath(path.root?.string ?? "")
        for component in path.components {
            current.append(component)
            if mkdir(current.string, 0o755) != 0 && errno != EEXIST {
                throw .io("creating directory \(current)", errno: Errno(rawValue: errno))
            }
        }
    }

    /// Whether an error is "no such file": the one failure that means "not there".
    public static func isMissing(_ error: TransferError) -> Bool {
        if case .fileSystem(_, let errno) = error { return errno == .noSuchFileOrDirectory }
        return false
    }

    public static func exists(_ path: FilePath) -> Bool {
        var info = stat()
        return stat(path.string, &info) == 0
    }

    public static func size(_ path: FilePath) -> Int64? {
        var info = stat()
        guard stat(path.string, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    /// The size of a regular file (symlinks followed), nil for anything else or nothing.
    public static func regularFileSize(_ path: FilePath) -> Int64? {
        var info = stat()
        guard stat(path.string, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    /// Copies `from` to `to` durably (temporary name, fsync, rename).
    public static func copy(_ from: FilePath, to: FilePath, mode: Int) throws(TransferError) {
        let source = try open(from, .readOnly)
        defer { try? source.close() }
        let temporary = FilePath(to.string + ".tmp-\(getpid())")
        let target = try open(temporary, .writeOnly, create: true, truncate: true)
        do throws(TransferError) {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n: Int
                do { n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) } } catch { throw .io("reading \(from)", errno: error) }
                if n == 0 { break }
                do { _ = try target.writeAll(buffer[0..<n]) } catch { throw .io("writing \(temporary)", errno: error) }
            }
            try sync(target, path: temporary)
            try? target.close()
            try chmod(temporary, mode: mode)
            try rename(temporary, to: to)
        } catch {
            try? target.close()
            remove(temporary)
            throw error
        }
        syncDirectory(to.removingLastComponent())
    }

    /// A hard link `to` → `from` where the filesystem allows one, else a durable copy.
    public static func linkOrCopy(_ from: FilePath, to: FilePath, mode: Int) throws(TransferError) {
        if link(from.string, to.string) == 0 {
            syncDirectory(to.removingLastComponent())
            return
        }
        try copy(from, to: to, mode: mode)
    }

    /// Opens `path`; `create` makes it if missing, `truncate` empties it.
    public static func open(
        _ path: FilePath, _ mode: FileDescriptor.AccessMode, create: Bool = false, truncate: Bool = false
    ) throws(TransferError) -> FileDescriptor {
        var options: FileDescriptor.OpenOptions = create ? [.create] : []
        if truncate { options.insert(.truncate) }
        do {
            return try FileDescriptor.open(path, mode, options: options, permissions: create ? [.ownerReadWrite, .groupRead, .otherRead] : nil)
        } catch {
            throw .io("opening \(path)", errno: error)
        }
    }

    /// Reserves `size` bytes so a full disk shows up before any byte is fetched.
    public static func reserve(_ fd: FileDescriptor, size: Int64, path: FilePath) throws(TransferError) {
        guard size > 0 else { return }
        let result = posix_fallocate(fd.rawValue, 0, off_t(size))
        if result != 0 { throw .io("reserving \(size) bytes for \(path)", errno: Errno(rawValue: result)) }
    }

    public static func sync(_ fd: FileDescriptor, path: FilePath) throws(TransferError) {
        if fsync(fd.rawValue) != 0 { throw .io("fsync \(path)", errno: Errno(rawValue: errno)) }
    }

    /// Starts writing a range of a file to disk without waiting (Linux `sync_file_range`), so a
    /// later fsync finds little left to do. Advisory: failures are ignored.
    static func startWriteback(_ fd: FileDescriptor, offset: Int64, length: Int64) {
        _ = fledge_start_writeback(fd.rawValue, off_t(offset), off_t(length))
    }

    public static func syncDirectory(_ path: FilePath) {
        guard let fd = try? FileDescriptor.open(path, .readOnly) else { return }
        fsync(fd.rawValue)
        try? fd.close()
    }

    public static func rename(_ from: FilePath, to: FilePath) throws(TransferError) {
        if Glibc.rename(from.string, to.string) != 0 {
            throw .io("renaming \(from) to \(to)", errno: Errno(rawValue: errno))
        }
    }

    public static func chmod(_ path: FilePath, mode: Int) throws(TransferError) {
        if Glibc.chmod(path.string, mode_t(mode)) != 0 {
            throw .io("chmod \(path)", errno: Errno(rawValue: errno))
        }
    }

    public static func remove(_ path: FilePath) { unlink(path.string) }

    /// The names in a directory (none if it cannot be read), `.` and `..` left out.
    public static func entries(_ path: FilePath) -> [String] {
        guard let dir = opendir(path.string) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a directory and the plain files directly in it.
    public static func removeFlatDirectory(_ path: FilePath) {
        for name in entries(path) { unlink(path.appending(name).string) }
        rmdir(path.string)
    }

    /// A small file's bytes (manifests, keys); refuses files over `limit`.
    public static func read(_ path: FilePath, limit: Int = 16 << 20) throws(TransferError) -> [UInt8] {
        let fd = try open(path, .readOnly)
        defer { try? fd.close() }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while out.count <= limit {
            let n: Int
            do { n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) } } catch { throw .io("reading \(path)", errno: error) }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
        throw .conflict("\(path) is larger than \(limit) bytes")
    }

    /// Writes `bytes` to `path` durably: a temporary name, fsync, rename, fsync of the directory.
    public static func writeAtomically(_ bytes: [UInt8], to path: FilePath, mode: Int = 0o644) throws(TransferError) {
        let temporary = FilePath(path.string + ".tmp-\(getpid())")
        // Truncate: a leftover temporary of an earlier process with this pid must not leave its tail.
        let fd = try open(temporary, .writeOnly, create: true, truncate: true)
        do throws(TransferError) {
            do { _ = try fd.writeAll(bytes) } catch { throw TransferError.io("writing \(temporary)", errno: error) }
            try sync(fd, path: temporary)
            try? fd.close()
            try chmod(temporary, mode: mode)
            try rename(temporary, to: path)
        } catch {
            try? fd.close()
            remove(temporary)
            throw error
        }
        syncDirectory(path.removingLastComponent())
    }
}
