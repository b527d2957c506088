/// The sources of one download, in the caller's order of preference, and what each has done:
/// pieces in flight, bytes delivered, failures, and whether it is still usable.
struct SourcePool {
    struct Source {
        let base: String
        var inFlight = 0
        var deliveredBytes: Int64 = 0
        var consecutiveFailures = 0
        var lastFailure = ""
        /// Backing off until then, after a failure.
        var notBefore: ContinuousClock.Instant?
        /// Since when it has answered only "not here yet" (503), if it has.
        var unavailableSince: ContinuousClock.Instant?
        /// Why the source is out of this download, if it is.
        var removal: String?
    }

    private(set) var sources: [Source]
    let failureLimit: Int

    init(bases: [String], failureLimit: Int) {
        sources = bases.map { Source(base: $0.hasSuffix("/") ? String($0.dropLast()) : $0) }
        self.failureLimit = failureLimit
    }

    var allRemoved: Bool { sources.allSatisfy { $0.removal != nil } }

    var failures: [SourceFailure] {
        sources.compactMap { source in source.removal.map { SourceFailure(source: source.base, reason: $0) } }
    }

    /// The first usable source, in preference order, with a free slot, skipping `excluded`.
    func pick(maxPerSource: Int, excluding excluded: Set<Int>, now: ContinuousClock.Instant) -> Int? {
        sources.indices.first { index in
            let source = sources[index]
            return source.removal == nil && source.inFlight < maxPerSource && (source.notBefore.map { $0 <= now } ?? true)
                && !excluded.contains(index)
        }
    }

    /// Whether any usable source is left that is not in `excluded`.
    func hasUsable(excluding excluded: Set<Int>) -> Bool {
        sources.indices.contains { sources[$0].removal == nil && !excluded.contains($0) }
    }

    /// The moment the earliest backed-off usable source may be tried again.
    var nextReady: ContinuousClock.Instant? {
        sources.filter { $0.removal == nil }.compactMap(\.notBefore).min()
    }

    mutating func started(_ index: Int) { sources[index].inFlight += 1 }
    mutating func finished(_ index: Int) { sources[index].inFlight -= 1 }

    mutating func delivered(_ index: Int, bytes: Int64) {
        sources[index].deliveredBytes += bytes
        sources[index].consecutiveFailures = 0
        sources[index].unavailableSince = nil
    }

    /// The source answered "not here yet": no blame, unless it has answered only that for
    /// `patience` (a peer that never gets the release must not hold a download forever).
    mutating func unavailable(_ index: Int, now: ContinuousClock.Instant, patience: Duration) {
        let since = sources[index].unavailableSince ?? now
        sources[index].unavailableSince = since
        if now - since >= patience {
            remove(index, reason: "had none of the pieces asked for in \(Int(patience.seconds)) s")
        }
    }

    /// A piece failed on this source for a reason that may pass (refused, timeout, reset,
    /// HTTP error): back off, and drop the source after `failureLimit` in a row.
    mutating func failed(_ index: Int, reason: String, now: ContinuousClock.Instant) {
        sources[index].consecutiveFailures += 1
        sources[index].lastFailure = reason
        let failures = sources[index].consecutiveFailures
        if failures >= failureLimit {
            remove(index, reason: "\(reason) (\(failures) failures in a row)")
        } else {
            sources[index].notBefore = now + .milliseconds(200 << (failures - 1))
        }
    }

    /// The source served bytes that do not match the signed manifest: never again in this download.
    mutating func ban(_ index: Int, reason: String) { remove(index, reason: "banned: \(reason)") }

    private mutating func remove(_ index: Int, reason: String) {
        if sources[index].removal == nil { sources[index].removal = reason }
    }

    var bytesBySource: [String: Int64] {
        Dictionary(sources.map { ($0.base, $0.deliveredBytes) }, uniquingKeysWith: +)
    }
}
