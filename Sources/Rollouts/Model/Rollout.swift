import Wire

/// A rollout runs or is paused while active; aborted or completed, it is history.
public enum RolloutPhase: String, Codable, Sendable {
    case running, paused, aborted, completed

    public var isActive: Bool { self == .running || self == .paused }
}

/// A rollout and every host's progress in it. Host progress changes only through `set`, which
/// keeps the counts the hot path reads (open hosts per batch, hosts per phase), so a beat never
/// scans the fleet.
public struct Rollout: Codable, Sendable, Equatable {
    public var id: String
    public var spec: RolloutSpec {
        didSet { selection = HostSelector.Lookup(spec.selector) }
    }
    public var phase: RolloutPhase
    public var pauseReason: String?
    public var createdAt: Int64
    public var finishedAt: Int64?
    /// Set for rollbacks: hosts newer than the target are targets too.
    public var allowsDowngrade: Bool
    public private(set) var hosts: [String: HostProgress]
    private var counts = Counts()
    /// `spec.selector`, quick to ask; derived, never stored.
    private var selection: HostSelector.Lookup

    /// Derived from `hosts`; never stored, never compared.
    private struct Counts: Sendable {
        var byPhase: [HostPhase: Int] = [:]
        /// Pending or upgrading hosts, by batch.
        var openByBatch: [Int: Int] = [:]
        /// Failed hosts with a retry ahead.
        var retrying = 0
        /// Hosts that failed and have not succeeded since.
        var failedHosts = 0
        var lastBatch = 0
        /// Hosts still fetching, by their primary source.
        var primaryLoad: [String: Int] = [:]
        /// Hosts still fetching, by every source their order lists.
        var listings: [String: Int] = [:]
        /// Hosts that reported each source as misbehaving.
        var reports: [String: Int] = [:]
        /// Hosts admitted in their batch (upgrading, done, or failed there), by batch: a batch
        /// has started once it has one. A host a retry moved on to a later batch is pending
        /// there, so it does not count as that batch's start.
        var startedByBatch: [Int: Int] = [:]
        /// Hosts whose progress time alone can change within seconds: upgrading (a lease, a
        /// deadline) or failed with a retry ahead. What a sweep looks at every second.
        var timed: Set<String> = []

        mutating func add(_ host: String, _ progress: HostProgress, _ sign: Int) {
            if progress.phase.isActive || (progress.phase == .failed && progress.retryAt != nil) {
                if sign > 0 { timed.insert(host) } else { timed.remove(host) }
            }
            if progress.isFetching {
                if let primary = progress.sources.first { primaryLoad[primary, default: 0] += sign }
                for source in progress.sources { listings[source, default: 0] += sign }
            }
            for source in progress.reported ?? [] { reports[source, default: 0] += sign }
            byPhase[progress.phase, default: 0] += sign
            if progress.phase == .pending || progress.phase.isActive { openByBatch[progress.batch, default: 0] += sign }
            if progress.phase == .failed && progress.retryAt != nil { retrying += sign }
            if progress.failures > 0 && progress.phase != .done { failedHosts += sign }
            if sign > 0 { lastBatch = max(lastBatch, progress.batch) }
            if progress.phase.isActive || progress.phase == .done || progress.phase == .failed {
                startedByBatch[progress.batch, default: 0] += sign
            }
        }
    }

    private enum CodingKeys: String, CodingKey {
        case id, spec, phase, pauseReason, createdAt, finishedAt, allowsDowngrade, hosts, untouched
    }

    /// Hosts still pending as the rollout created them (no admission yet), stored as lists
    /// of names by batch and version instead of a record each: a new rollout of 100,000 hosts
    /// is a few lists of names to encode, write and read (stores, and other instances through
    /// Redis), not 100,000 records. `hosts` holds the rest, and wins where a name is in both.
    private struct Untouched: Codable, Hashable {
        var batch: Int
        var fromVersion: String
        var hosts: [String] = []

        /// Its hosts' progress, as the rollout created them.
        var progress: HostProgress { HostProgress(phase: .pending, batch: batch, fromVersion: fromVersion) }
    }

    /// Equal when everything but the derived counts is equal.
    public static func == (a: Rollout, b: Rollout) -> Bool {
        a.id == b.id && a.spec == b.spec && a.phase == b.phase && a.pauseReason == b.pauseReason
            && a.createdAt == b.createdAt && a.finishedAt == b.finishedAt && a.allowsDowngrade == b.allowsDowngrade
            && a.hosts == b.hosts
    }

    public init(
        id: String, spec: RolloutSpec, phase: RolloutPhase, createdAt: Int64, allowsDowngrade: Bool,
        hosts: [String: HostProgress] = [:]
    ) {
        self.id = id
        self.spec = spec
        self.selection = HostSelector.Lookup(spec.selector)
        self.phase = phase
        self.createdAt = createdAt
        self.allowsDowngrade = allowsDowngrade
        self.hosts = [:]
        replaceHosts(hosts)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        spec = try container.decode(RolloutSpec.self, forKey: .spec)
        selection = HostSelector.Lookup(spec.selector)
        phase = try container.decode(RolloutPhase.self, forKey: .phase)
        pauseReason = try container.decodeIfPresent(String.self, forKey: .pauseReason)
        createdAt = try container.decode(Int64.self, forKey: .createdAt)
        finishedAt = try container.decodeIfPresent(Int64.self, forKey: .finishedAt)
        allowsDowngrade = try container.decode(Bool.self, forKey: .allowsDowngrade)
        var all = try container.decode([String: HostProgress].self, forKey: .hosts)
        for group in try container.decodeIfPresent([Untouched].self, forKey: .untouched) ?? [] {
            let progress = group.progress
            for host in group.hosts where all[host] == nil { all[host] = progress }
        }
        hosts = [:]
        replaceHosts(all)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(spec, forKey: .spec)
        try container.encode(phase, forKey: .phase)
        try container.encodeIfPresent(pauseReason, forKey: .pauseReason)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encodeIfPresent(finishedAt, forKey: .finishedAt)
        try container.encode(allowsDowngrade, forKey: .allowsDowngrade)
        var touched: [String: HostProgress] = [:]
        var untouched: [Untouched: [String]] = [:]
        for (host, progress) in hosts {
            if progress.isAsCreated {
                untouched[Untouched(batch: progress.batch, fromVersion: progress.fromVersion), default: []].append(host)
            } else {
                touched[host] = progress
            }
        }
        try container.encode(touched, forKey: .hosts)
        if !untouched.isEmpty {
            let groups = untouched.map { Untouched(batch: $0.key.batch, fromVersion: $0.key.fromVersion, hosts: $0.value) }
            try container.encode(groups.sorted { ($0.batch, $0.fromVersion) < ($1.batch, $1.fromVersion) }, forKey: .untouched)
        }
    }

    /// Sets (or, with nil, removes) one host's progress.
    public mutating func set(_ host: String, _ progress: HostProgress?) {
        if let old = hosts[host] { counts.add(host, old, -1) }
        hosts[host] = progress
        if let progress { counts.add(host, progress, +1) }
    }

    public mutating func replaceHosts(_ all: [String: HostProgress]) {
        hosts = all
        counts = Counts()
        for (host, progress) in all { counts.add(host, progress, +1) }
    }

    /// The same rollout with only its hosts still as created (`HostProgress.isAsCreated`),
    /// which its encoding keeps as lists of names: how a shared store keeps the rollout apart
    /// from the records of the hosts that moved.
    public var withUntouchedHostsOnly: Rollout {
        var copy = self
        copy.replaceHosts(hosts.filter { $0.value.isAsCreated })
        return copy
    }

    public func count(_ phase: HostPhase) -> Int { counts.byPhase[phase, default: 0] }

    /// Hosts still fetching, by primary source: what a CDN's slots and a peer's fan-out limit.
    public var primaryLoad: [String: Int] { counts.primaryLoad }

    /// Hosts still fetching, by every source listed in their orders: a swarm peer's load.
    public var listings: [String: Int] { counts.listings }

    /// Hosts that reported each source as misbehaving.
    public var reports: [String: Int] { counts.reports }

    /// Hosts that failed and have not succeeded since: what the failure budget counts.
    public var failedHosts: Int { counts.failedHosts }

    /// Hosts upgrading or failed with a retry ahead: those time alone can change every second.
    var timedHosts: Set<String> { counts.timed }

    /// Hosts holding a concurrency slot.
    public var activeCount: Int { HostPhase.allCases.filter(\.isActive).reduce(0) { $0 + count($1) } }

    /// The lowest batch with hosts still to start or still upgrading; failed and absent hosts
    /// never hold a batch open. Nil when every host is done, failed or absent.
    public var currentBatch: Int? { counts.openByBatch.filter { $0.value > 0 }.keys.min() }

    /// The hosts it can admit now: those pending in its current batch (at its start, woken
    /// before the others; the simulator does the same).
    public var admissibleNow: Set<String> {
        guard let batch = currentBatch else { return [] }
        return Set(hosts.lazy.filter { $0.value.batch == batch && $0.value.phase == .pending }.map(\.key))
    }

    /// Whether any host has been admitted in `batch` yet.
    public func hasStarted(batch: Int) -> Bool { counts.startedByBatch[batch, default: 0] > 0 }

    /// The batch hosts joining now are put in: the last one.
    var lastBatch: Int { counts.lastBatch }

    /// Hosts waiting to be admitted: pending, or failed with a retry ahead.
    var waitingHosts: Int { count(.pending) + counts.retrying }

    /// Hosts still to start, upgrading, or failed with a retry ahead.
    var hasWork: Bool { counts.openByBatch.values.contains { $0 > 0 } || counts.retrying > 0 }

    /// Nothing left to do and nobody missing: an absent host may still come back, so a rollout
    /// waiting for one stays running (an operator may abort it).
    var isFinished: Bool { !hasWork && count(.absent) == 0 }

    /// Whether the rollout's selector picks this host.
    func selects(hostname: String, labels: [String: String]) -> Bool {
        selection.matches(hostname: hostname, labels: labels)
    }

    /// Whether a host running `version` is one this rollout should upgrade.
    func isTarget(version: String) -> Bool {
        guard let target = SemanticVersion(spec.version), let current = SemanticVersion(version) else {
            return version != spec.version
        }
        return allowsDowngrade ? current != target : current < target
    }
}
