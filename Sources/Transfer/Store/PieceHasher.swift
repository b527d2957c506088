import SystemPackage

/// Hashes a file the way a manifest describes it, reading it once: whole-file SHA-256 and MD5,
/// and the SHA-256 of each piece.
public enum PieceHasher {
    public struct Result: Sendable {
        public var size: Int64
        public var sha256: String
        public var md5: String
        public var pieces: [String]
    }

    public static func hash(_ path: FilePath, pieceSize: Int64) throws(TransferError) -> Result {
        let fd = try Files.open(path, .readOnly)
        defer { try? fd.close() }
        let whole = Hasher(.sha256), md5 = Hasher(.md5), piece = Hasher(.sha256)
        var pieces: [String] = []
        var size: Int64 = 0
        while true {
            let read = try Hasher.feed([whole, md5, piece], from: fd, offset: size, length: pieceSize)
            if read == 0 { break }
            pieces.append(piece.finalizeHex())
            size += read
            if read < pieceSize { break }
        }
        return Result(size: size, sha256: whole.finalizeHex(), md5: md5.finalizeHex(), pieces: pieces)
    }
}
