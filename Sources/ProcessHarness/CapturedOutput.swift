import Foundation

/// One output stream of a child, kept in an unnamed temporary file: the child writes to it, and
/// its text can be read at any time, while the child runs (tests poll stderr for progress) and
/// after it ends. Unlinked as soon as it is made, so nothing is left on disk however this process
/// ends; the space goes back when the last descriptor closes.
final class CapturedOutput: Sendable {
    /// The handle the child writes through (given to `Process`).
    let writer: FileHandle
    private let reader: Int32

    init() throws {
        let directory = NSTemporaryDirectory()
        var template = Array("\(directory)/fledge-output-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw HarnessError.system("cannot create an output file in \(directory)") }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        let writerFD = dup(fd)
        guard writerFD >= 0 else {
            close(fd)
            throw HarnessError.system("dup")
        }
        reader = fd
        writer = FileHandle(fileDescriptor: writerFD, closeOnDealloc: true)
    }

    /// Everything written so far, decoded as UTF-8.
    var text: String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(reader, $0.baseAddress, $0.count, off_t(bytes.count)) }
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    deinit { close(reader) }
}
