#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage
import Transfer

/// A release switched to and on trial: written before the install changes anything, removed
/// when the release commits (after its commit window) or the guard rolls it back.
public struct PendingRelease: Codable, Sendable, Equatable {
    /// The release switched to (the order's version).
    public var version: String
    /// Its directory under `releases/`: the version, or `VERSION~N` when that name was taken
    /// by the running or previous release.
    public var release: String
    /// The version it replaced.
    public var from: String
    public var rolloutId: String
    /// What the new binary reports: the release's version, or the running one for a falcon
    /// config-only order (which keeps the binary).
    public var binaryVersion: String
    /// SHA-256 of the config the install put at the agent's config path, when it changed it:
    /// with `binaryVersion`, what tells the process on trial from the one it replaced.
    public var configSHA256: String?

    public init(version: String, release: String, from: String, rolloutId: String, binaryVersion: String, configSHA256: String?) {
        self.version = version
        self.release = release
        self.from = from
        self.rolloutId = rolloutId
        self.binaryVersion = binaryVersion
        self.configSHA256 = configSHA256
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(String.self, forKey: .version)
        from = try container.decode(String.self, forKey: .from)
        rolloutId = try container.decode(String.self, forKey: .rolloutId)
        // Records written before these fields: a binary upgrade into `releases/VERSION`.
        release = try container.decodeIfPresent(String.self, forKey: .release) ?? version
        binaryVersion = try container.decodeIfPresent(String.self, forKey: .binaryVersion) ?? version
        configSHA256 = try container.decodeIfPresent(String.self, forKey: .configSHA256)
    }
}

/// What the guard leaves when it switched back: the agent (the old version again) reports it.
public struct RollbackRecord: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var reason: String
    public var rolloutId: String?
}

/// A file outside the data directory an install replaces (the config, the unit), recorded in
/// `DATA/undo` first so the guard can put it back.
struct InstalledFile {
    /// `config` or `unit`: the guard reloads systemd when it puts a unit back.
    let name: String
    let path: FilePath
    let content: [UInt8]
}

extension ReleaseLayout {
    func read<T: Decodable>(_ type: T.Type, at path: FilePath) -> T? {
        guard let bytes = try? Files.read(path) else { return nil }
        return try? JSONDecoder().decode(T.self, from: Data(bytes))
    }

    func write(_ value: some Encodable, to path: FilePath) throws(TransferError) {
        guard let data = try? JSONEncoder().encode(value) else { throw .conflict("cannot encode \(path)") }
        try Files.writeAtomically(Array(data), to: path)
    }

    /// Records what `files` will replace: `undo/NAME.path` (where it is installed) and
    /// `undo/NAME.old` (what it holds now; absent when there is no such file yet). Built under a
    /// temporary name and renamed: the guard sees all of it or none.
    func recordUndo(_ files: [InstalledFile]) throws(TransferError) {
        let staging = FilePath(undo.string + ".tmp")
        Files.removeFlatDirectory(staging)
        Files.removeFlatDirectory(undo)
        guard !files.isEmpty else { return }
        try Files.makeDirectory(staging)
        for file in files {
            try Files.writeAtomically(Array(file.path.string.utf8), to: staging.appending("\(file.name).path"))
            if let old = try? Files.read(file.path) {
                try Files.writeAtomically(old, to: staging.appending("\(file.name).old"))
            }
        }
        try Files.rename(staging, to: undo)
        Files.syncDirectory(data)
    }

    /// Takes back an install that failed before its switch (a unit that cannot be written, a
    /// reload that fails), as the guard does at the next start for one that was interrupted:
    /// every file in `DATA/undo` back as it was, then the trial forgotten. True when a unit file
    /// was put back (systemd must reload).
    func undoInstall() -> Bool {
        var unit = false
        for entry in Files.entries(undo) where entry.hasSuffix(".path") {
            let name = String(entry.dropLast(".path".count))
            guard let bytes = try? Files.read(undo.appending(entry)) else { continue }
            let target = String(decoding: bytes, as: UTF8.self)
            if let old = try? Files.read(undo.appending("\(name).old")) {
                try? Files.writeAtomically(old, to: FilePath(target))
            } else {
                Files.remove(FilePath(target))
            }
            if name == "unit" { unit = true }
        }
        Files.remove(pending)
        Files.syncDirectory(data)
        Files.removeFlatDirectory(undo)
        return unit
    }

    /// The release on trial committed: raise the floor (`VersionFloor`) to its `version` of
    /// release `name`, then forget the trial. Removing `pending` is the commit itself; the
    /// guard clears whatever else is left should the host die right after.
    func commit(version: String, name: String) {
        raiseFloor(confirming: version, name: name)
        Files.remove(pending)
        Files.syncDirectory(data)
        for leftover in trialMarkers { Files.remove(leftover) }
        Files.removeFlatDirectory(undo)
    }
}
