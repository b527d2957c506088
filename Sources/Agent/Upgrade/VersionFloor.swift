#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage
import Transfer
import Wire

/// How far down this host may ever go (rollback protection, as TUF names the attack): the
/// highest version it confirmed, and the highest minimum version a release it confirmed
/// declared in its signed manifest. Kept in `DATA/floor` and raised at each commit, never
/// lowered.
///
/// - An upgrade goes above the running version and to at least the highest one confirmed: after
///   a rollback, an "upgrade" cannot land between the two.
/// - A rollback goes only to this host's previous release, and never below a declared minimum.
public struct VersionFloor: Codable, Sendable, Equatable {
    public var highestConfirmed: String?
    public var minimumVersion: String?

    public init(highestConfirmed: String? = nil, minimumVersion: String? = nil) {
        self.highestConfirmed = highestConfirmed
        self.minimumVersion = minimumVersion
    }

    /// `version` was confirmed, its manifest (if a signed release) declaring `minimum`.
    mutating func confirm(_ version: String, minimum: String?) {
        highestConfirmed = Self.higher(highestConfirmed, version)
        if let minimum { minimumVersion = Self.higher(minimumVersion, minimum) }
    }

    private static func higher(_ a: String?, _ b: String) -> String {
        guard let a, let x = SemanticVersion(a) else { return b }
        guard let y = SemanticVersion(b) else { return a }
        return y > x ? b : a
    }

    /// Why an order to `target` (from `running`) is refused, or nil when the floor allows it.
    /// `previous`: the version `DATA/previous` holds, the one release a rollback may go to.
    func refusal(target: SemanticVersion, running: SemanticVersion, rollback: Bool, previous: String?) -> String? {
        if let minimumVersion, let minimum = SemanticVersion(minimumVersion), target < minimum {
            return "\(target) is below \(minimumVersion), the minimum a release confirmed here declared"
        }
        if rollback {
            guard let previous, let back = SemanticVersion(previous), back == target else {
                return "a rollback goes only to this host's previous release (\(previous ?? "none")), not \(target)"
            }
            return nil
        }
        guard target > running else { return "\(target) is not newer than \(running), and the order is no rollback" }
        if let highestConfirmed, let highest = SemanticVersion(highestConfirmed), target < highest {
            return "\(target) is below \(highestConfirmed), the highest version this host confirmed"
        }
        return nil
    }
}

extension ReleaseLayout {
    public var floor: FilePath { data.appending("floor") }

    /// The floor as kept (none yet: no limit beyond the running version).
    public func readFloor() -> VersionFloor { read(VersionFloor.self, at: floor) ?? VersionFloor() }

    /// Raises the floor for a confirmed `version`, reading what its signed manifest declares
    /// from the store (a falcon release declares nothing).
    func raiseFloor(confirming version: String, name: String) {
        var floor = readFloor()
        let manifest = (try? Files.read(store.appending(name).appending(version).appending("manifest.json")))
            .flatMap { try? Manifest.decode($0) }
        floor.confirm(version, minimum: manifest?.minimumVersion)
        try? write(floor, to: self.floor)
    }
}
