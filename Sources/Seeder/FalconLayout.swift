import SystemPackage
import Transfer
import Wire

/// falcon-plus' release layout, `{wgeturl}/bin_{version}` and `cfg_{version}`, next to the
/// Fledge layout of the same release, so falcon agents and scripts keep working unchanged.
enum FalconLayout {
    /// `ROOT/NAME/bin_VERSION` (and `cfg_VERSION`) for a release whose files are in `directory`:
    /// hard links where the filesystem allows, else copies. An existing entry must hold the
    /// same bytes; otherwise this throws `.conflict`.
    static func link(_ manifest: Manifest, from directory: FilePath, root: FilePath) throws(TransferError) {
        for file in manifest.files where file.role != .unit {
            let path = root.appending(manifest.name).appending("\(file.role.rawValue)_\(manifest.version)")
            if let size = Files.regularFileSize(path) {
                guard size == file.size, (try? Digest.file(at: path).sha256) == file.sha256 else {
                    throw .conflict("\(path) holds other bytes than \(manifest.name) \(manifest.version)")
                }
                continue
            }
            try Files.linkOrCopy(directory.appending(file.name), to: path, mode: file.mode)
        }
    }
}
