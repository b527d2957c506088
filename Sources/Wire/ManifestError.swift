/// Why a manifest was refused. Each case says what to look at.
public enum ManifestError: Error, Equatable, CustomStringConvertible {
    case malformedJSON(String)
    case unsupportedFormat(Int)
    case missingField(String)
    case invalidField(String, reason: String)
    case negativeSize(file: String, size: Int64)
    case piecesDoNotCoverSize(file: String, expected: Int, actual: Int)
    case expired(expiresAt: Int64, now: Int64)
    case unknownKey(String)
    case badSignature(keyId: String)
    case tooFewSignatures(valid: Int, threshold: Int)

    public var description: String {
        switch self {
        case .malformedJSON(let detail): "manifest is not valid JSON: \(detail)"
        case .unsupportedFormat(let format):
            "manifest format \(format) is not supported (this build reads format \(Manifest.currentFormat)); upgrade the reader or republish"
        case .missingField(let field): "manifest has no '\(field)' field"
        case .invalidField(let field, let reason): "manifest field '\(field)' is invalid: \(reason)"
        case .negativeSize(let file, let size): "manifest gives file '\(file)' a negative size (\(size))"
        case .piecesDoNotCoverSize(let file, let expected, let actual):
            "manifest lists \(actual) pieces for file '\(file)' but its size needs \(expected)"
        case .expired(let expiresAt, let now):
            "manifest expired at \(expiresAt) (now \(now)); give it a new expiry: fledge-seeder resign"
        case .unknownKey(let keyId): "manifest is signed by key '\(keyId)', which is not pinned here"
        case .badSignature(let keyId): "manifest signature does not verify with key '\(keyId)': tampered or corrupt"
        case .tooFewSignatures(let valid, let threshold):
            "manifest carries \(valid) valid signature\(valid == 1 ? "" : "s") of keys pinned here; \(threshold) are required (signatureThreshold)"
        }
    }
}
