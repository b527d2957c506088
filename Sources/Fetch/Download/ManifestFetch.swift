import Transfer
import Wire

extension ManifestVerifier {
    /// The manifest of `name` `version` from `manifestURL` when given, else from each source's
    /// `{base}/{name}/{version}/manifest.json` in turn: the first that verifies and is that
    /// release. Otherwise every source's failure (bad signature, unknown key, expired,
    /// unreachable, another release), named. Each source gets at most `seconds` and `maxBytes`:
    /// one that trickles or never ends its body cannot hold the upgrade.
    public func fetch(
        name: String, version: String, from sources: [String], manifestURL: String? = nil,
        maxBytes: Int = DownloadOptions().maxManifestBytes, seconds: Int = DownloadOptions().manifestSeconds
    ) throws(TransferError) -> Manifest {
        let urls = manifestURL.map { [$0] } ?? sources.map {
            ($0.hasSuffix("/") ? String($0.dropLast()) : $0) + "/\(name)/\(version)/manifest.json"
        }
        var failures: [SourceFailure] = []
        for url in urls {
            do {
                let manifest = try open(try Curl.get(url, limit: maxBytes, timeoutSeconds: seconds))
                guard manifest.name == name, manifest.version == version else {
                    failures.append(SourceFailure(source: url, reason: "holds \(manifest.name) \(manifest.version), not \(name) \(version)"))
                    continue
                }
                return manifest
            } catch let error as ManifestError {
                failures.append(SourceFailure(source: url, reason: error.description))
            } catch {
                failures.append(SourceFailure(source: url, reason: "\(error)"))
            }
        }
        throw .allSourcesFailed(failures)
    }
}
