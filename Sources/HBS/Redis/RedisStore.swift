#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Rollouts
import Synchronization
import Transfer
import Wire

/// Fleet state shared by several HBS instances through one Redis:
///
///     {prefix}agents           hash: host → agent JSON
///     {prefix}rollouts         hash: id → rollout JSON, with only the hosts still as created
///                              (lists of names by batch)
///     {prefix}hosts:{id}       hash: host → that host's progress JSON, for every host that
///                              moved (it wins over the rollout's lists)
///     {prefix}events:{id}      list: the rollout's events (`RolloutEvent` JSON), oldest first
///     {prefix}credentials      hash: host → SHA-256 of its secret (set once, HSETNX)
///     {prefix}fleet-token      the enrolment token, when no instance was given one (SET NX)
///     {prefix}epoch            bumped whenever a rollout is created or changes phase, or a
///                              host is forgotten
///     {prefix}changes          stream: one entry per write that changed agents or hosts'
///                              progress, naming them (`by` the instance that wrote it); capped
///                              near `changeStreamLength` entries
///     {prefix}seen             sorted set: host → when it last beat, at whichever instance
///     {prefix}sweeper          the instance that runs the sweeps, for a few seconds (a lease)
///     agent_upgrade_set        sorted set: hosts holding a slot, scored by lease expiry
///
/// Instances learn what others changed incrementally: each sync (before a sweep, and on the
/// beat path at most every 100 ms) reads the change stream from where it stopped and fetches
/// only the agents and hosts named there, so a sync costs what changed, not the fleet's size,
/// and a beat costs Redis nothing unless it changes something. An instance that fell behind
/// the stream's cap (its place was trimmed away) reads everything again. Each instance adds
/// the hosts that beat at it to `seen` (a host at most every `seenGranularitySeconds`); before
/// taking a host for absent or long gone, the engine asks there (`lastSeen(of:)`), so the one
/// instance that sweeps never judges a host by the beats it happened to answer.
///
/// Admission is one Lua script over the sorted set (expire, then admit below the limit), so
/// the concurrency limit holds exactly across instances and a dead host's slot frees itself.
/// With Redis down, beats are still answered from memory, nobody is admitted, and every
/// failure is logged and counted; calls reconnect by themselves.
public final class RedisStore: FleetStore, AdmissionLedger {
    public let client: RedisClient
    public let prefix: String
    public let slotKey: String
    private let logger: Logger
    private let errors = Atomic<Int>(0)
    /// The rollout epoch last seen, and when it was last asked for.
    private let lastEpoch = Mutex<(epoch: Int64?, checked: ContinuousClock.Instant?)>((nil, nil))
    /// How stale a beat's view of the rollouts may be (sweeps always ask).
    private let epochInterval: Duration
    /// This instance's name in the change stream (its own entries are skipped when read back)
    /// and in the sweep lease.
    public let instance: String
    /// The change stream's entry this instance has read up to: one that exists until trimmed.
    private let cursor = Mutex<String?>(nil)
    /// Hosts that beat here, with when, not yet shared in `seen`; and when each host's
    /// liveness was last shared.
    private let seenHere = Mutex<(unshared: [String: Int64], shared: [String: Int64])>(([:], [:]))
    /// Whether this instance held the sweep lease at its last claim.
    private let sweeping = Atomic<Bool>(false)
    /// When the beat path last read the change stream.
    private let changesRead = Mutex<ContinuousClock.Instant?>(nil)
    /// When a quiet beat last went to the actor to read what is due (`quietBeat`); cleared by
    /// the read. Others stay quiet meanwhile, for at most `changesInterval`.
    private let readClaimed = Mutex<ContinuousClock.Instant?>(nil)
    /// How stale a beat's view of other instances' changes may be (sweeps always read).
    private let changesInterval: Duration
    /// Entries the change stream keeps (about): an instance further behind reads everything.
    static let changeStreamLength = 100_000
    /// A host's liveness is shared at most this often: absence (minutes) and forgetting
    /// (days) are judged on far coarser times.
    static let seenGranularitySeconds: Int64 = 30
    /// How long the sweep lease lasts without being renewed (sweeps run every second).
    static let sweepLeaseMilliseconds = 3_000

    /// `epochInterval` and `changesInterval`: how often the beat path asks for the rollouts'
    /// epoch and reads the change stream.
    public init(
        client: RedisClient, prefix: String = "fledge:", slotKey: String = "agent_upgrade_set", logger: Logger,
        epochInterval: Duration = .milliseconds(250), changesInterval: Duration = .milliseconds(100)
    ) {
        self.client = client
        self.epochInterval = epochInterval
        self.changesInterval = changesInterval
        self.prefix = prefix
        self.slotKey = slotKey
        self.logger = logger
        var generator = SystemRandomNumberGenerator()
        self.instance = String(generator.next() as UInt64, radix: 16)
    }

    /// Redis calls that failed since start (for /metrics).
    public var failures: Int { errors.load(ordering: .relaxed) }

    /// Whether the last call reached Redis.
    public var isReachable: Bool { (try? client.command(["PING"])) != nil }

    static let admitScript = """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
        if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
          redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
          return 1
        end
        if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
          redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
          return 1
        end
        return 0
        """

    // MARK: AdmissionLedger

    public func admit(host: String, limit: Int, leaseUntil: Int64, now: Int64) -> Bool {
        guard let reply = attempt("admitting \(host)", { () throws(RedisError) in
            try client.command(["EVAL", Self.admitScript, "1", slotKey, "\(now)", host, "\(leaseUntil)", "\(limit)"])
        }) else { return false }
        return reply.integer == 1
    }

    public func renew(host: String, leaseUntil: Int64) {
        _ = attempt("renewing \(host)'s lease") { () throws(RedisError) in
            try client.command(["ZADD", slotKey, "XX", "\(leaseUntil)", host])
        }
    }

    public func release(host: String) {
        _ = attempt("releasing \(host)'s slot") { () throws(RedisError) in try client.command(["ZREM", slotKey, host]) }
    }

    public func lease(of host: String) -> LeaseLookup {
        guard let reply = attempt("looking up \(host)'s lease", { () throws(RedisError) in
            try client.command(["ZSCORE", slotKey, host])
        }) else { return .unknown }
        return reply.integer.map { .held(until: $0) } ?? .free
    }

    /// Hosts holding a slot now (expired leases excluded).
    public func slotHolders(now: Int64) throws(RedisError) -> Int {
        Int(try client.command(["ZCOUNT", slotKey, "\(now)", "+inf"]).integer ?? 0)
    }

    // MARK: FleetStore

    public var ledger: (any AdmissionLedger)? { self }

    /// Everything Redis holds; the change stream is followed from here on.
    public func load() throws(StoreError) -> FleetState {
        var state = FleetState()
        do {
            try reload(&state, keeping: [])
        } catch {
            errors.add(1, ordering: .relaxed)
            logger.warning("redis: loading the fleet state failed: \(error); starting from what arrives")
        }
        return state
    }

    public func prepare(_ events: [FleetEvent], state: FleetState) throws(StoreError) -> DurableWrite {
        // Only what needs the state is taken here, on the control plane's actor: a rollout
        // whose phase changed, as it stands. The commands and their JSON are built in the
        // write, off the actor (at a rollout's start that was half the actor's time).
        var phased: [String: Rollout] = [:]
        for case .rolloutPhase(let id, _, _, _) in events { phased[id] = state.rollouts[id].map(Self.meta) }
        return { [self, events, phased] () throws(StoreError) in
            do {
                try client.transaction(commands(for: events, phased: phased))
            } catch {
                errors.add(1, ordering: .relaxed)
                throw .io("\(error)")
            }
        }
    }

    /// One transaction's commands for `events`; `phased`: the rollouts whose phase they
    /// change, as `meta` stores them.
    private func commands(for events: [FleetEvent], phased: [String: Rollout]) -> [[String]] {
        var commands: [[String]] = []
        var bumpEpoch = false
        var changedAgents: [String] = []
        var changedHosts: [[String]] = []
        for event in events {
            switch event {
            case .agentSeen(let agent):
                commands.append(["HSET", "\(prefix)agents", agent.hostname, Self.json(agent)])
                changedAgents.append(agent.hostname)
            case .rolloutCreated(let rollout):
                commands.append(["HSET", "\(prefix)rollouts", rollout.id, Self.json(Self.meta(rollout))])
                for (host, progress) in rollout.hosts where !progress.isAsCreated {
                    commands.append(["HSET", "\(prefix)hosts:\(rollout.id)", host, Self.json(progress)])
                }
                bumpEpoch = true
            case .hostUpdated(let id, let host, let progress):
                commands.append(["HSET", "\(prefix)hosts:\(id)", host, Self.json(progress)])
                changedHosts.append([id, host])
            case .rolloutPhase(let id, _, _, _):
                guard let rollout = phased[id] else { continue }
                commands.append(["HSET", "\(prefix)rollouts", id, Self.json(rollout)])
                if !rollout.phase.isActive { commands.append(["DEL", slotKey]) }  // no slots outlive their rollout
                bumpEpoch = true
            case .hostEnrolled(let host, let digest):
                // Never over another instance's binding: whoever set it first keeps the name.
                commands.append(["HSETNX", "\(prefix)credentials", host, digest])
            case .hostForgotten(let host):
                commands.append(["HDEL", "\(prefix)credentials", host])
                commands.append(["HDEL", "\(prefix)agents", host])
                commands.append(["ZREM", "\(prefix)seen", host])
                changedAgents.append(host)
                bumpEpoch = true  // every instance rereads the bindings
            case .rolloutDropped(let id):
                commands.append(["HDEL", "\(prefix)rollouts", id])
                commands.append(["DEL", "\(prefix)hosts:\(id)"])
                commands.append(["DEL", "\(prefix)events:\(id)", "\(prefix)events-once:\(id)"])
                bumpEpoch = true
            case .noted(let id, let note):
                // In the same transaction as the change it tells of; every instance reads it.
                // Each instance derives events from its own view, so two may tell of one
                // change (a batch starting, the sweep completing): pushed once per key.
                commands.append([
                    "EVAL", Self.pushOnce, "2", "\(prefix)events:\(id)", "\(prefix)events-once:\(id)", Self.onceKey(note), Self.json(note),
                ])
            }
        }
        if !changedAgents.isEmpty || !changedHosts.isEmpty {
            commands.append(
                ["XADD", "\(prefix)changes", "MAXLEN", "~", "\(Self.changeStreamLength)", "*", "by", instance]
                    + (changedAgents.isEmpty ? [] : ["agents", Self.json(changedAgents)])
                    + (changedHosts.isEmpty ? [] : ["hosts", Self.json(changedHosts)]))
        }
        if bumpEpoch { commands.append(["INCR", "\(prefix)epoch"]) }
        return commands
    }

    /// A beat from `host`: the rollouts again when the epoch moved (asked at most every
    /// 250 ms) and other instances' changes (read at most every 100 ms), so an instance that
    /// takes over a host from another (failover) knows its progress, while an idle fleet's
    /// beats cost Redis nothing.
    public func refresh(_ state: inout FleetState, host: String, keeping: Set<String>) -> OutsideChange {
        noteSeen(host)
        defer { readClaimed.withLock { $0 = nil } }
        var change = OutsideChange.nothing
        _ = attempt("refreshing from redis") { () throws(RedisError) in
            change = try followEpoch(&state, always: false, keeping: keeping)
            let instant = ContinuousClock.now
            let due = changesRead.withLock { last in
                guard changesDue(last, at: instant) else { return false }
                last = instant
                return true
            }
            if due { change = change.merged(with: try followChanges(&state, keeping: keeping)) }
            return .null
        }
        return change
    }

    /// Notes that `host` beat here; true unless the epoch or the change stream is due to be
    /// read and no other beat has gone to read it lately: the one beat told false goes to the
    /// control plane's actor, whose `refresh` reads. The others stay quiet meanwhile. Before,
    /// every beat in that window went to the actor, queuing behind the read and behind any
    /// sweep the actor was in (15-27 ms at 100,000 hosts), once every 100 ms.
    public func quietBeat(from host: String) -> Bool {
        noteSeen(host)
        let now = ContinuousClock.now
        let due = lastEpoch.withLock { epochDue($0.checked, at: now) } || changesRead.withLock { changesDue($0, at: now) }
        guard due else { return true }
        return readClaimed.withLock { claimed in
            if let claimed, now - claimed < changesInterval { return true }
            claimed = now
            return false
        }
    }

    /// `host` beat here: its liveness is shared at the next sweep, if not shared lately.
    private func noteSeen(_ host: String) {
        let now = UnixTime.now
        seenHere.withLock { seen in
            if now - (seen.shared[host] ?? 0) >= Self.seenGranularitySeconds { seen.unshared[host] = now }
        }
    }

    /// Whether a beat reads the epoch, last asked for at `checked`.
    private func epochDue(_ checked: ContinuousClock.Instant?, at now: ContinuousClock.Instant) -> Bool {
        checked.map { now - $0 >= epochInterval } ?? true
    }

    /// Whether a beat reads the change stream, last read at `read`.
    private func changesDue(_ read: ContinuousClock.Instant?, at now: ContinuousClock.Instant) -> Bool {
        read.map { now - $0 >= changesInterval } ?? true
    }

    /// Before a sweep: shares who beat here, then reads the rollouts (if the epoch moved) and
    /// the change stream since the last read.
    public func synchronize(_ state: inout FleetState, keeping: Set<String>) -> OutsideChange {
        var change = OutsideChange.nothing
        _ = attempt("synchronizing with redis") { () throws(RedisError) in
            try shareLiveness()
            change = try followEpoch(&state, always: true, keeping: keeping)
            changesRead.withLock { $0 = ContinuousClock.now }
            change = change.merged(with: try followChanges(&state, keeping: keeping))
            return .null
        }
        return change
    }

    /// Other instances' changes since the cursor, fetched; everything again if this instance
    /// fell behind the stream's cap.
    private func followChanges(_ state: inout FleetState, keeping: Set<String>) throws(RedisError) -> OutsideChange {
        if let changed = try readChanges() { return try fetch(changed, into: &state, keeping: keeping) }
        logger.notice("redis: this instance fell behind the change stream: reading the whole fleet state again")
        try reload(&state, keeping: keeping)
        return .everything
    }

    /// The rollouts, when the epoch moved (`always`: ask now; else at most every 250 ms). A
    /// rollout new here, or whose phase moved elsewhere (paused, completed by another
    /// instance), is read with its whole host table as Redis holds it: once a rollout is no
    /// longer active no beat rereads its hosts, so a table kept from before would stay stale
    /// for good. Lease times stay this instance's view, and so do the hosts in `keeping`.
    private func followEpoch(_ state: inout FleetState, always: Bool, keeping: Set<String>) throws(RedisError) -> OutsideChange {
        let now = ContinuousClock.now
        let due = always || lastEpoch.withLock { epochDue($0.checked, at: now) }
        guard due else { return .nothing }
        let epoch = try client.command(["GET", "\(prefix)epoch"]).integer ?? 0
        lastEpoch.withLock { $0.checked = now }
        guard lastEpoch.withLock({ $0.epoch }) != epoch else { return .nothing }
        for (id, json) in try hash("\(prefix)rollouts") {
            if let number = Int(id.dropFirst()) { state.nextRolloutNumber = max(state.nextRolloutNumber, number + 1) }
            guard var rollout = Self.decode(Rollout.self, json), state.rollouts[id]?.phase != rollout.phase else { continue }
            let stored = try hash("\(prefix)hosts:\(id)").compactMapValues { Self.decode(HostProgress.self, $0) }
            var hosts = rollout.hosts.merging(stored) { _, record in record }
            if let known = state.rollouts[id]?.hosts {
                for (name, progress) in known { if let lease = progress.leaseUntil { hosts[name]?.leaseUntil = lease } }
                for name in keeping { if let mine = known[name] { hosts[name] = mine } }
            }
            rollout.replaceHosts(hosts)
            state.rollouts[id] = rollout
        }
        // Bindings forgotten elsewhere bump the epoch too: read them all again.
        state.credentials = try hash("\(prefix)credentials")
        lastEpoch.withLock { $0.epoch = epoch }
        return .everything
    }

    /// Everything: a mark in the change stream to follow it from, then the rollouts (with
    /// their host tables), the bindings and every agent; hosts in `keeping` stay as they are.
    private func reload(_ state: inout FleetState, keeping: Set<String>) throws(RedisError) {
        let mark = try client.command(["XADD", "\(prefix)changes", "MAXLEN", "~", "\(Self.changeStreamLength)", "*", "by", instance])
        cursor.withLock { $0 = mark.text }
        lastEpoch.withLock { $0.epoch = nil }
        let phases = state.rollouts.mapValues(\.phase)
        _ = try followEpoch(&state, always: true, keeping: keeping)
        // The active rollout's table, unless the epoch's read just brought it whole (at load).
        if let id = state.activeRolloutID, phases[id] == state.rollouts[id]?.phase {
            for (name, json) in try hash("\(prefix)hosts:\(id)") where !keeping.contains(name) {
                guard let progress = Self.decode(HostProgress.self, json) else { continue }
                let kept = Self.keepingLease(progress, of: name, in: id, state)
                state.rollouts[id]?.set(name, kept)
            }
        }
        for (name, json) in try hash("\(prefix)agents") where !keeping.contains(name) {
            guard let agent = Self.decode(AgentRecord.self, json) else { continue }
            Self.merge(agent, into: &state)
        }
    }

    /// What other instances changed since the cursor: agents and hosts (by rollout) named in
    /// the change stream. Nil when the cursor's entry is gone: trimmed away, this instance is
    /// too far behind to follow (or Redis lost the stream).
    private func readChanges() throws(RedisError) -> (agents: Set<String>, hosts: [String: Set<String>])? {
        guard var from = cursor.withLock({ $0 }) else { return nil }
        var agents = Set<String>()
        var hosts: [String: Set<String>] = [:]
        let page = 1000
        while true {
            // Inclusive of the cursor's own entry: its absence says the stream was trimmed past it.
            guard case .array(let entries) = try client.command(["XRANGE", "\(prefix)changes", from, "+", "COUNT", "\(page)"]),
                  let first = entries.first, Self.streamEntry(first)?.id == from else { return nil }
            for entry in entries.dropFirst() {
                guard let (id, fields) = Self.streamEntry(entry) else { continue }
                from = id
                guard fields["by"] != instance else { continue }
                if let names = fields["agents"].flatMap({ Self.decode([String].self, $0) }) { agents.formUnion(names) }
                for pair in fields["hosts"].flatMap({ Self.decode([[String]].self, $0) }) ?? [] where pair.count == 2 {
                    hosts[pair[0], default: []].insert(pair[1])
                }
            }
            if entries.count < page { break }
        }
        cursor.withLock { $0 = from }
        return (agents, hosts)
    }

    /// Reads the agents and host progress `changed` names, in one round trip, but for those
    /// in `keeping`.
    private func fetch(
        _ changed: (agents: Set<String>, hosts: [String: Set<String>]), into state: inout FleetState, keeping: Set<String>
    ) throws(RedisError) -> OutsideChange {
        let agentNames = Array(changed.agents.subtracting(keeping))
        let hostLists = changed.hosts.filter { state.rollouts[$0.key] != nil }
            .map { ($0.key, Array($0.value.subtracting(keeping))) }.filter { !$0.1.isEmpty }
        guard !agentNames.isEmpty || !hostLists.isEmpty else { return .nothing }
        var commands: [[String]] = []
        if !agentNames.isEmpty { commands.append(["HMGET", "\(prefix)agents"] + agentNames) }
        for (id, names) in hostLists { commands.append(["HMGET", "\(prefix)hosts:\(id)"] + names) }
        let replies = try client.pipeline(commands)
        var touched = Set<String>()
        var index = 0
        if !agentNames.isEmpty {
            for (name, value) in zip(agentNames, Self.items(replies[index])) {
                if let agent = value.text.flatMap({ Self.decode(AgentRecord.self, $0) }) {
                    Self.merge(agent, into: &state)
                } else {
                    state.agents[name] = nil  // forgotten elsewhere
                }
                touched.insert(name)
            }
            index += 1
        }
        for (id, names) in hostLists {
            for (name, value) in zip(names, Self.items(replies[index])) {
                guard let progress = value.text.flatMap({ Self.decode(HostProgress.self, $0) }) else { continue }
                let kept = Self.keepingLease(progress, of: name, in: id, state)
                state.rollouts[id]?.set(name, kept)
                touched.insert(name)
            }
            index += 1
        }
        return touched.isEmpty ? .nothing : .hosts(touched)
    }

    /// Adds the hosts that beat here since the last sync to `seen` (never moving a time back).
    private func shareLiveness() throws(RedisError) {
        let unshared = seenHere.withLock { seen in
            defer { seen.unshared = [:] }
            return seen.unshared
        }
        guard !unshared.isEmpty else { return }
        let chunks = stride(from: 0, to: unshared.count, by: 1000).map { start in
            unshared.dropFirst(start).prefix(1000).flatMap { ["\($0.value)", $0.key] }
        }
        do {
            _ = try client.pipeline(chunks.map { ["ZADD", "\(prefix)seen", "GT"] + $0 })
        } catch {
            seenHere.withLock { seen in seen.unshared.merge(unshared) { max($0, $1) } }  // next time
            throw error
        }
        seenHere.withLock { seen in seen.shared.merge(unshared) { max($0, $1) } }
    }

    /// When each of `hosts` last beat at any instance, as `seen` holds it (ZMSCORE, in one
    /// round trip); empty when Redis cannot be asked (nothing is then judged on it).
    public func lastSeen(of hosts: [String]) -> [String: Int64] {
        guard !hosts.isEmpty else { return [:] }
        try? shareLiveness()  // this instance's own beats count too
        let chunks = stride(from: 0, to: hosts.count, by: 1000).map { Array(hosts[$0..<min(hosts.count, $0 + 1000)]) }
        var seen: [String: Int64] = [:]
        _ = attempt("reading when \(hosts.count) hosts last beat") { () throws(RedisError) in
            let replies = try client.pipeline(chunks.map { ["ZMSCORE", "\(prefix)seen"] + $0 })
            for (chunk, reply) in zip(chunks, replies) {
                if case .error(let message) = reply { throw RedisError.server(message) }
                for (host, score) in zip(chunk, Self.items(reply)) {
                    if let text = score.text, let value = Double(text) { seen[host] = Int64(value) }
                }
            }
            return .null
        }
        return seen
    }

    /// Whether this instance runs the sweep now: it holds the lease or takes it (renewed on
    /// every sweep; another instance takes over once it lapses).
    public func claimSweep() -> Bool {
        let claimed = attempt("claiming the sweep") { () throws(RedisError) in
            try client.command(["EVAL", Self.claimScript, "1", "\(prefix)sweeper", instance, "\(Self.sweepLeaseMilliseconds)"])
        }?.integer == 1
        if sweeping.exchange(claimed, ordering: .relaxed) != claimed {
            logger.notice(claimed ? "this instance (\(instance)) runs the sweeps now" : "another instance runs the sweeps now")
        }
        return claimed
    }

    /// SET KEYS[1] to ARGV[1] for ARGV[2] ms if it is free or already ARGV[1]'s.
    static let claimScript = """
        local owner = redis.call('GET', KEYS[1])
        if owner == false or owner == ARGV[1] then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return 1
        end
        return 0
        """

    /// The fleet's enrolment token every instance shares: `proposed` when none is stored yet
    /// (`SET NX`), else the stored one.
    public func fleetToken(proposing proposed: String) throws(RedisError) -> String {
        let key = "\(prefix)fleet-token"
        _ = try client.command(["SET", key, proposed, "NX"])
        guard let token = try client.command(["GET", key]).text else { throw RedisError.server("\(key) vanished") }
        return token
    }

    public func credential(of host: String) -> String? {
        attempt("reading \(host)'s credential") { () throws(RedisError) in
            try client.command(["HGET", "\(prefix)credentials", host])
        }?.text
    }

    // MARK: Helpers

    /// RPUSH KEYS[1] ARGV[2] unless ARGV[1] is already in the set KEYS[2].
    static let pushOnce = "if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then return redis.call('RPUSH', KEYS[1], ARGV[2]) end return 0"

    /// What makes an event the same event, whichever instance tells it: the batch that
    /// started, the rollout's end, a pause or resume at its second, a host's failure or
    /// success at its second.
    static func onceKey(_ note: RolloutEvent) -> String {
        switch note.kind {
        case .batchStarted: "batch:\(note.batch ?? -1)"
        case .created, .completed, .aborted, .rolledBack: note.kind.rawValue
        default: "\(note.kind.rawValue):\(note.host ?? ""):\(note.at)"
        }
    }

    public func events(of rollout: String, after: Int) throws(StoreError) -> [RolloutEvent] {
        let reply: RedisReply
        do { reply = try client.command(["LRANGE", "\(prefix)events:\(rollout)", "\(max(0, after))", "-1"]) } catch {
            throw .io("reading the events of \(rollout) from redis: \(error)")
        }
        guard case .array(let items) = reply else { return [] }
        return items.compactMap { $0.text.flatMap { Self.decode(RolloutEvent.self, $0) } }
    }

    /// An agent record read from Redis: new here, or its identity changed elsewhere; the
    /// later of the two last-seen times stays.
    private static func merge(_ agent: AgentRecord, into state: inout FleetState) {
        var agent = agent
        if let known = state.agents[agent.hostname] { agent.lastSeen = max(agent.lastSeen, known.lastSeen) }
        state.agents[agent.hostname] = agent
    }

    /// `progress` as Redis holds it, with this instance's view of the lease time (leases live
    /// in the slot set; a host's beats renew them where they arrive).
    private static func keepingLease(_ progress: HostProgress, of host: String, in rollout: String, _ state: FleetState) -> HostProgress {
        var progress = progress
        progress.leaseUntil = state.rollouts[rollout]?.hosts[host]?.leaseUntil ?? progress.leaseUntil
        return progress
    }

    /// A stream entry's id and fields.
    private static func streamEntry(_ reply: RedisReply) -> (id: String, fields: [String: String])? {
        guard case .array(let parts) = reply, parts.count == 2, let id = parts[0].text else { return nil }
        var fields: [String: String] = [:]
        let items = items(parts[1])
        var index = 0
        while index + 1 < items.count {
            if let field = items[index].text, let value = items[index + 1].text { fields[field] = value }
            index += 2
        }
        return (id, fields)
    }

    private static func items(_ reply: RedisReply) -> [RedisReply] {
        if case .array(let items) = reply { return items }
        return []
    }

    private func hash(_ key: String) throws(RedisError) -> [String: String] {
        guard case .array(let items) = try client.command(["HGETALL", key]) else { return [:] }
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < items.count {
            if let field = items[index].text, let value = items[index + 1].text { result[field] = value }
            index += 2
        }
        return result
    }

    /// Runs a Redis step; a failure is logged, counted and turned into nil.
    private func attempt(_ what: String, _ body: () throws(RedisError) -> RedisReply) -> RedisReply? {
        do { return try body() } catch {
            errors.add(1, ordering: .relaxed)
            logger.warning("redis: \(what) failed: \(error)")
            return nil
        }
    }

    /// What `{prefix}rollouts` holds for a rollout: it with the hosts still as created, as
    /// lists of names; every other host has its record in `{prefix}hosts:{id}`, which wins.
    static func meta(_ rollout: Rollout) -> Rollout { rollout.withUntouchedHostsOnly }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ json: String) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(json.utf8))
    }
}
