import SystemPackage
import Transfer

/// The release signing key pair on disk: `release.key` (PKCS#8 PEM, mode 0600) and
/// `release.pub` (SubjectPublicKeyInfo PEM), readable by `openssl pkey` too.
public enum ReleaseKeys {
    public static let privateKeyName = "release.key"
    public static let publicKeyName = "release.pub"

    /// Writes a new pair into `directory`; refuses to overwrite an existing key.
    public static func generate(into directory: FilePath) throws(TransferError) -> Ed25519PublicKey {
        let keyPath = directory.appending(privateKeyName), pubPath = directory.appending(publicKeyName)
        guard !Files.exists(keyPath), !Files.exists(pubPath) else {
            throw .conflict("\(directory) already holds a release key; move it away first (it may sign live releases)")
        }
        try Files.makeDirectory(directory)
        let key = try Ed25519PrivateKey.generate()
        let publicKey = try key.publicKey
        try Files.writeAtomically(Array(try key.pemRepresentation.utf8), to: keyPath, mode: 0o600)
        try Files.writeAtomically(Array(try publicKey.pemRepresentation.utf8), to: pubPath, mode: 0o644)
        return publicKey
    }

    public static func loadPrivate(_ path: FilePath) throws(TransferError) -> Ed25519PrivateKey {
        let pem = String(decoding: try Files.read(path), as: UTF8.self)
        do { return try Ed25519PrivateKey(pem: pem) } catch { throw .invalidKey("\(path): \(error)") }
    }

    public static func loadPublic(_ path: FilePath) throws(TransferError) -> Ed25519PublicKey {
        let pem = String(decoding: try Files.read(path), as: UTF8.self)
        do { return try Ed25519PublicKey(pem: pem) } catch { throw .invalidKey("\(path): \(error)") }
    }
}
