import Rollouts
import Wire

/// The body of `POST /v1/rollouts`, as an operator writes it; `spec()` turns it into a
/// validated `RolloutSpec` or names the field that is wrong.
struct RolloutRequest: Codable, Sendable {
    struct Release: Codable, Sendable {
        var name: String
        var version: String
        /// Where the signed manifest is; by default `{source}/{name}/{version}/manifest.json`.
        var manifestUrl: String?
        /// A falcon release instead: one URL and md5s.
        var falcon: FalconRelease?
    }

    struct FalconRelease: Codable, Sendable {
        var wgeturl: String
        var type: Int?
        var binfile_md5: String?
        var cfgfile_md5: String?
    }

    struct Selector: Codable, Sendable {
        var labels: [String: String]?
        var hosts: [String]?
    }

    var release: Release
    var sources: [CDNSource]?
    var selector: Selector?
    var canary: Int?
    var batchSize: Int?
    var batchPercentages: [Double]?
    var maxConcurrent: Int?
    var failureBudget: Int?
    var peers: Bool?
    var leaseSeconds: Int64?
    var deadlineSeconds: Int64?

    func spec(defaultMaxConcurrent: Int) throws(ValidationError) -> RolloutSpec {
        let locator: ReleaseLocator
        var sources = self.sources ?? []
        if let falcon = release.falcon {
            locator = .falcon(wgetURL: falcon.wgeturl, type: falcon.type ?? 0,
                              binMD5: (falcon.binfile_md5 ?? "").lowercased(), cfgMD5: (falcon.cfgfile_md5 ?? "").lowercased())
            if sources.isEmpty { sources = [CDNSource(url: falcon.wgeturl, capacityMbps: 10_000)] }
        } else {
            locator = .fledge(manifestURL: release.manifestUrl)
        }
        let selector: HostSelector
        switch (self.selector?.labels, self.selector?.hosts) {
        case (nil, nil): selector = .all
        case (let labels?, nil): selector = .labels(labels)
        case (nil, let hosts?): selector = .hosts(hosts)
        case (.some, .some): throw ValidationError(field: "selector", reason: "give labels or hosts, not both")
        }
        let batches: BatchPlan
        switch (batchSize, batchPercentages) {
        case (nil, nil): batches = .sizes([])
        case (let size?, nil): batches = .sizes([size])
        case (nil, let percentages?): batches = .percentages(percentages)
        case (.some, .some): throw ValidationError(field: "batchSize", reason: "give batchSize or batchPercentages, not both")
        }
        var spec = RolloutSpec(
            name: release.name, version: release.version, locator: locator, sources: sources, selector: selector,
            canary: canary ?? 0, batches: batches, maxConcurrent: maxConcurrent ?? defaultMaxConcurrent,
            failureBudget: failureBudget ?? 0, peersMayServe: peers ?? true)
        if let leaseSeconds { spec.leaseSeconds = leaseSeconds }
        if let deadlineSeconds { spec.deadlineSeconds = deadlineSeconds }
        try spec.validate()
        return spec
    }
}
