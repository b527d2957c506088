import Wire

/// What an operator asks for: which release, to whom, from where, how fast, and how much
/// failure to tolerate before stopping. Validated once, with errors that name the field.
public struct RolloutSpec: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var locator: ReleaseLocator
    public var sources: [CDNSource]
    public var selector: HostSelector
    /// Hosts in the first batch, which must confirm before anyone else starts. 0: no canary.
    public var canary: Int
    /// The batches after the canary: fixed sizes, or percentages of the remaining hosts.
    public var batches: BatchPlan
    /// Hosts downloading or installing at once, over the whole rollout.
    public var maxConcurrent: Int
    /// Failed hosts tolerated; one more pauses the rollout.
    public var failureBudget: Int
    /// Whether hosts that hold the release verified may serve it to others.
    public var peersMayServe: Bool
    /// Seconds an admitted host may stay silent before its slot is freed and it counts failed.
    public var leaseSeconds: Int64
    /// Seconds from admission to confirmation of the new version.
    public var deadlineSeconds: Int64

    public init(
        name: String, version: String, locator: ReleaseLocator, sources: [CDNSource], selector: HostSelector = .all,
        canary: Int = 0, batches: BatchPlan = .sizes([]), maxConcurrent: Int = 2000, failureBudget: Int = 0,
        peersMayServe: Bool = true, leaseSeconds: Int64 = 60, deadlineSeconds: Int64 = 900
    ) {
        self.name = name
        self.version = version
        self.locator = locator
        self.sources = sources
        self.selector = selector
        self.canary = canary
        self.batches = batches
        self.maxConcurrent = maxConcurrent
        self.failureBudget = failureBudget
        self.peersMayServe = peersMayServe
        self.leaseSeconds = leaseSeconds
        self.deadlineSeconds = deadlineSeconds
    }

    /// The rules every spec obeys; the error names the field to fix.
    public func validate() throws(ValidationError) {
        guard ReleaseName.isValid(name) else { throw ValidationError(field: "release.name", reason: "must be 1-128 of [A-Za-z0-9._+-]") }
        guard SemanticVersion(version) != nil, ReleaseName.isValid(version) else {
            throw ValidationError(field: "release.version", reason: "'\(version)' is not a version")
        }
        guard !sources.isEmpty else { throw ValidationError(field: "sources", reason: "give at least one source") }
        for (index, source) in sources.enumerated() {
            guard source.url.hasPrefix("http://") || source.url.hasPrefix("https://") else {
                throw ValidationError(field: "sources[\(index)].url", reason: "must be an http(s) URL")
            }
            guard source.capacityMbps > 0 else {
                throw ValidationError(field: "sources[\(index)].capacityMbps", reason: "must be positive")
            }
        }
        guard canary >= 0 else { throw ValidationError(field: "canary", reason: "must not be negative") }
        try batches.validate()
        guard maxConcurrent > 0 else { throw ValidationError(field: "maxConcurrent", reason: "must be positive") }
        guard failureBudget >= 0 else { throw ValidationError(field: "failureBudget", reason: "must not be negative") }
        guard leaseSeconds > 0 else { throw ValidationError(field: "leaseSeconds", reason: "must be positive") }
        guard deadlineSeconds > 0 else { throw ValidationError(field: "deadlineSeconds", reason: "must be positive") }
        if case .falcon(let url, let type, let bin, let cfg) = locator {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw ValidationError(field: "wgeturl", reason: "must be an http(s) URL")
            }
            guard (0...2).contains(type) else { throw ValidationError(field: "type", reason: "must be 0 (binary), 1 (config) or 2 (both)") }
            if type != 1 && !Self.isMD5(bin) { throw ValidationError(field: "binfile_md5", reason: "must be 32 hex digits") }
            if type != 0 && !Self.isMD5(cfg) { throw ValidationError(field: "cfgfile_md5", reason: "must be 32 hex digits") }
        }
    }

    static func isMD5(_ text: String) -> Bool { text.count == 32 && Hex.decode(text.lowercased()) != nil }
}

/// A download origin with a known uplink: an nginx, a CDN edge, a seeder.
public struct CDNSource: Codable, Sendable, Equatable {
    public var url: String
    public var capacityMbps: Double
    public var labels: [String: String]

    public init(url: String, capacityMbps: Double, labels: [String: String] = [:]) {
        self.url = url
        self.capacityMbps = capacityMbps
        self.labels = labels
    }

    /// Labels are optional in requests.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        url = try container.decode(String.self, forKey: .url)
        capacityMbps = try container.decode(Double.self, forKey: .capacityMbps)
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
    }
}

/// Which hosts a rollout is for.
public enum HostSelector: Codable, Sendable, Equatable {
    case all
    /// Hosts whose labels include every one of these.
    case labels([String: String])
    case hosts([String])

    public func matches(hostname: String, labels: [String: String]) -> Bool {
        switch self {
        case .all: true
        case .labels(let wanted): wanted.allSatisfy { labels[$0.key] == $0.value }
        case .hosts(let names): names.contains(hostname)
        }
    }

    /// The selector asked for many hosts (every host at a rollout's creation, every latecomer's
    /// beat): a host list is looked up in a set built once, not searched. A rollback names
    /// every host it returns, 100,000 of them at that fleet size.
    public struct Lookup: Sendable {
        public let selector: HostSelector
        private let names: Set<String>?

        public init(_ selector: HostSelector) {
            self.selector = selector
            if case .hosts(let list) = selector { names = Set(list) } else { names = nil }
        }

        public func matches(hostname: String, labels: [String: String]) -> Bool {
            if let names { return names.contains(hostname) }
            return selector.matches(hostname: hostname, labels: labels)
        }
    }
}

/// How the hosts after the canary are cut into batches. The last size (or percentage) repeats
/// until every host has a batch: `sizes([100])` is batches of 100; `percentages([10, 50])` of
/// 100 hosts is 10, 50, 40.
public enum BatchPlan: Codable, Sendable, Equatable {
    /// Batches of these sizes. Empty: everyone in one batch.
    case sizes([Int])
    /// Batches of these percentages of the hosts after the canary.
    case percentages([Double])

    func validate() throws(ValidationError) {
        switch self {
        case .sizes(let sizes):
            guard sizes.allSatisfy({ $0 > 0 }) else { throw ValidationError(field: "batches.sizes", reason: "every size must be positive") }
        case .percentages(let parts):
            guard !parts.isEmpty, parts.allSatisfy({ $0 > 0 && $0 <= 100 }) else {
                throw ValidationError(field: "batches.percentages", reason: "give percentages in (0, 100]")
            }
        }
    }

    /// Batch sizes for `count` hosts: every host in exactly one batch.
    func sizes(for count: Int) -> [Int] {
        guard count > 0 else { return [] }
        let steps: [Int]
        switch self {
        case .sizes(let fixed): steps = fixed.isEmpty ? [count] : fixed
        case .percentages(let parts): steps = parts.map { max(1, Int((Double(count) * $0 / 100).rounded(.up))) }
        }
        var result: [Int] = []
        var left = count
        var index = 0
        while left > 0 {
            let taken = min(steps[min(index, steps.count - 1)], left)
            result.append(taken)
            left -= taken
            index += 1
        }
        return result
    }
}

/// A request that cannot be carried out as given; `field` says where to look.
public struct ValidationError: Error, Equatable, CustomStringConvertible {
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

extension RolloutSpec {
    /// A falcon rollout (md5-only, unsigned): the falcon admin API started it.
    public var isFalcon: Bool { if case .falcon = locator { true } else { false } }
}
