#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Manifest {
    /// Parses and structurally checks a manifest: format, required fields, names, hashes, sizes
    /// and piece lists. Expiry and signature need a clock and keys; Transfer's `ManifestVerifier`
    /// checks those on top of this.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ManifestError) -> Manifest {
        let data = Data(bytes)
        let probe: FormatProbe
        do {
            probe = try JSONDecoder().decode(FormatProbe.self, from: data)
        } catch let error as DecodingError {
            throw mapped(error)
        } catch {
            throw .malformedJSON("\(error)")
        }
        guard let format = probe.format else { throw .missingField("format") }
        guard format == currentFormat else { throw .unsupportedFormat(format) }

        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch let error as DecodingError {
            throw mapped(error)
        } catch {
            throw .malformedJSON("\(error)")
        }
        try manifest.validate()
        return manifest
    }

    /// JSON for the wire and for disk: stable key order, so equal manifests give equal files.
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Encoding plain strings and integers cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }

    /// The structural rules every manifest obeys, signed or not.
    public func validate() throws(ManifestError) {
        try ReleaseName.check(name, field: "name")
        try ReleaseName.check(version, field: "version")
        guard pieceSize > 0 else { throw .invalidField("pieceSize", reason: "must be positive, is \(pieceSize)") }
        guard expiresAt > createdAt else {
            throw .invalidField("expiresAt", reason: "must be after createdAt (\(createdAt)), is \(expiresAt)")
        }
        guard !files.isEmpty else { throw .invalidField("files", reason: "a release has at least one file") }
        guard !keyId.isEmpty else { throw .missingField("keyId") }
        guard !signature.isEmpty else { throw .missingField("signature") }
        var keys: Set<String> = [keyId]
        for (index, cosignature) in (cosignatures ?? []).enumerated() {
            guard !cosignature.keyId.isEmpty, !cosignature.signature.isEmpty else { throw .missingField("cosignatures[\(index)]") }
            guard keys.insert(cosignature.keyId).inserted else {
                throw .invalidField("cosignatures[\(index)].keyId", reason: "key '\(cosignature.keyId)' signs twice")
            }
        }
        if let minimumVersion { try ReleaseName.check(minimumVersion, field: "minimumVersion") }
        var names = Set<String>()
        var roles = Set<ReleaseFile.Role>()
        for (index, file) in files.enumerated() {
            let field = "files[\(index)]"
            try ReleaseName.check(file.name, field: "\(field).name")
            guard names.insert(file.name).inserted else {
                throw .invalidField("\(field).name", reason: "'\(file.name)' appears twice")
            }
            guard roles.insert(file.role).inserted else {
                throw .invalidField("\(field).role", reason: "a release has one file per role; '\(file.role.rawValue)' appears twice")
            }
            guard file.size >= 0 else { throw .negativeSize(file: file.name, size: file.size) }
            guard (0...0o7777).contains(file.mode) else {
                throw .invalidField("\(field).mode", reason: "\(file.mode) is not a permission mode")
            }
            try Hex.check(file.sha256, bytes: 32, field: "\(field).sha256")
            try Hex.check(file.md5, bytes: 16, field: "\(field).md5")
            let expected = ReleaseFile.pieceCount(size: file.size, pieceSize: pieceSize)
            guard file.pieces.count == expected else {
                throw .piecesDoNotCoverSize(file: file.name, expected: expected, actual: file.pieces.count)
            }
            for (p, piece) in file.pieces.enumerated() {
                try Hex.check(piece, bytes: 32, field: "\(field).pieces[\(p)]")
            }
        }
    }

    private static func mapped(_ error: DecodingError) -> ManifestError {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            (codingPath + (last.map { [$0] } ?? [])).map { key in
                key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)"
            }.joined().trimmingPrefix(".").description
        }
        switch error {
        case .keyNotFound(let key, let context): return .missingField(path(context.codingPath, key))
        case .valueNotFound(_, let context): return .missingField(path(context.codingPath))
        case .typeMismatch(_, let context):
            return .invalidField(path(context.codingPath), reason: context.debugDescription)
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            return .invalidField(path(context.codingPath), reason: context.debugDescription)
        case .dataCorrupted(let context): return .malformedJSON(context.debugDescription)
        @unknown default: return .malformedJSON("\(error)")
        }
    }
}

private struct FormatProbe: Decodable { var format: Int? }

/// Names that are safe as one path component and as one token of the canonical text:
/// letters, digits and `._+-`, not starting with a dot, at most 128 bytes.
public enum ReleaseName {
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 128, name.first != "." else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "+"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }

    /// The version a host's release directory holds: its name, less the `~N` of a second copy
    /// (staged beside a running or previous release of the same version).
    public static func version(ofDirectory name: String) -> String {
        String(name.prefix { $0 != "~" })
    }

    static func check(_ name: String, field: String) throws(ManifestError) {
        guard isValid(name) else {
            throw .invalidField(field, reason: "'\(name)' must be 1-128 of [A-Za-z0-9._+-], not starting with '.'")
        }
    }
}

/// Lowercase hexadecimal, the one spelling of hashes on the wire.
public enum Hex {
    /// Lower-case hex, written straight into the string's storage (every authenticated beat
    /// hashes its secret and spells the digest so: no table or buffer built per call).
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let bytes = Array(bytes)
        return String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (index, byte) in bytes.enumerated() {
                out[2 * index] = digit(byte >> 4)
                out[2 * index + 1] = digit(byte & 0x0f)
            }
            return bytes.count * 2
        }
    }

    private static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    static func check(_ text: String, bytes: Int, field: String) throws(ManifestError) {
        guard text.utf8.count == bytes * 2, decode(text) != nil else {
            throw .invalidField(field, reason: "must be \(bytes * 2) lowercase hex digits")
        }
    }
}
