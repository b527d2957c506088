#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage
import Transfer

/// A release switched to and not yet confirmed: written just before the agent exits to let the
/// supervisor start the new version, removed once that version has confirmed its health.
public struct PendingRelease: Codable, Sendable, Equatable {
    public var version: String
    public var from: String
    public var rolloutId: String
}

/// What the guard leaves when it switched back: the agent (the old version again) reports it.
public struct RollbackRecord: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var reason: String
    public var rolloutId: String?
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

    /// The switch is confirmed: forget the pending record and its start count, and raise the
    /// floor (`VersionFloor`) to the confirmed `version` of release `name`.
    func commit(version: String, name: String) {
        raiseFloor(confirming: version, name: name)
        Files.remove(pending)
        Files.remove(attempts)
        Files.syncDirectory(data)
    }
}
