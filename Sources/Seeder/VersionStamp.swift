import SystemPackage
import Transfer
import Wire

/// Writes a copy of an agent binary that reports another version: the version lives in a
/// fixed-width slot after a marker (`AgentVersion` in the agent), so the slot is rewritten in
/// place and nothing else moves.
public enum VersionStamp {
    public static let marker = Array("FLEDGE-AGENT-VERSION-SLOT:".utf8)
    public static let slotWidth = 48

    public enum Failure: Error, CustomStringConvertible {
        case noSlot(String)
        case severalSlots(String, Int)
        case badVersion(String)
        case io(TransferError)

        public var description: String {
            switch self {
            case .noSlot(let path): "\(path) has no version slot: not a fledge-agent binary"
            case .severalSlots(let path, let count): "\(path) has \(count) version slots; refusing to guess which"
            case .badVersion(let version): "version '\(version)' must be 1-\(slotWidth - 1) of [A-Za-z0-9._+-]"
            case .io(let error): error.description
            }
        }
    }

    /// Copies `binary` to `output` (mode 0755) with `version` in its slot.
    public static func stamp(binary: FilePath, version: String, output: FilePath) throws(Failure) {
        guard ReleaseName.isValid(version), version.utf8.count < slotWidth else { throw .badVersion(version) }
        var bytes: [UInt8]
        do { bytes = try Files.read(binary, limit: 1 << 30) } catch { throw .io(error) }
        let offsets = occurrences(of: marker, in: bytes)
        guard let offset = offsets.first else { throw .noSlot(binary.string) }
        guard offsets.count == 1 else { throw .severalSlots(binary.string, offsets.count) }
        let start = offset + marker.count
        guard start + slotWidth <= bytes.count else { throw .noSlot(binary.string) }
        let slot = Array(version.utf8) + Array(repeating: 0, count: slotWidth - version.utf8.count)
        bytes.replaceSubrange(start..<(start + slotWidth), with: slot)
        do { try Files.writeAtomically(bytes, to: output, mode: 0o755) } catch { throw .io(error) }
    }

    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
        guard let first = needle.first, haystack.count >= needle.count else { return [] }
        var found: [Int] = []
        var index = 0
        while index <= haystack.count - needle.count {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                found.append(index)
                index += needle.count
            } else {
                index += 1
            }
        }
        return found
    }
}
