#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Rollouts
import Synchronization
import Wire

/// Fleet state shared by several HBS instances through one Redis:
///
///     {prefix}agents           hash: host → agent JSON
///     {prefix}rollouts         hash: id → rollout JSON (without its hosts)
///     {prefix}hosts:{id}       hash: host → that host's progress JSON
///     {prefix}events:{id}      list: the rollout's events (`RolloutEvent` JSON), oldest first
///     {prefix}credentials      hash: host → SHA-256 of its secret (set once, HSETNX)
///     {prefix}fleet-token      the enrolment token, when no instance was given one (SET NX)
///     {prefix}epoch            bumped whenever a rollout is created or changes phase, or a
///                              host is forgotten
///     agent_upgrade_set        sorted set: hosts holding a slot, scored by lease expiry
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
    private let epochInterval = Duration.milliseconds(250)

    public init(client: RedisClient, prefix: String = "fledge:", slotKey: String = "agent_upgrade_set", logger: Logger) {
        self.client = client
        self.prefix = prefix
        self.slotKey = slotKey
        self.logger = logger
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

    public func load() throws(StoreError) -> FleetState {
        var state = FleetState()
        _ = refresh(&state, host: nil, everything: true)
        return state
    }

    public func prepare(_ events: [FleetEvent], state: FleetState) throws(StoreError) -> DurableWrite {
        var commands: [[String]] = []
        var bumpEpoch = false
        for event in events {
            switch event {
            case .agentSeen(let agent):
                commands.append(["HSET", "\(prefix)agents", agent.hostname, Self.json(agent)])
            case .rolloutCreated(let rollout):
                commands.append(["HSET", "\(prefix)rollouts", rollout.id, Self.json(Self.meta(rollout))])
                for (host, progress) in rollout.hosts {
                    commands.append(["HSET", "\(prefix)hosts:\(rollout.id)", host, Self.json(progress)])
                }
                bumpEpoch = true
            case .hostUpdated(let id, let host, let progress):
                commands.append(["HSET", "\(prefix)hosts:\(id)", host, Self.json(progress)])
            case .rolloutPhase(let id, _, _, _):
                guard let rollout = state.rollouts[id] else { continue }
                commands.append(["HSET", "\(prefix)rollouts", id, Self.json(Self.meta(rollout))])
                if !rollout.phase.isActive { commands.append(["DEL", slotKey]) }  // no slots outlive their rollout
                bumpEpoch = true
            case .hostEnrolled(let host, let digest):
                // Never over another instance's binding: whoever set it first keeps the name.
                commands.append(["HSETNX", "\(prefix)credentials", host, digest])
            case .hostForgotten(let host):
                commands.append(["HDEL", "\(prefix)credentials", host])
                commands.append(["HDEL", "\(prefix)agents", host])
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
        if bumpEpoch { commands.append(["INCR", "\(prefix)epoch"]) }
        return { [self, commands] () throws(StoreError) in
            do {
                try client.transaction(commands)
            } catch {
                errors.add(1, ordering: .relaxed)
                throw .io("\(error)")
            }
        }
    }

    /// Brings in what other instances changed: rollouts when the epoch moved, the progress of
    /// `host` in the active rollout, and (for `everything`) every host's progress and agent.
    /// True when more than `host`'s progress was read (rollouts, or everything).
    func refresh(_ state: inout FleetState, host: String?, everything: Bool) -> Bool {
        var wide = everything
        _ = attempt("refreshing from redis") { () throws(RedisError) in
            // Rollouts change rarely: a beat asks for the epoch at most every 250 ms, so an idle
            // fleet's beats cost Redis nothing.
            let now = ContinuousClock.now
            let due = everything || lastEpoch.withLock { $0.checked.map { now - $0 >= epochInterval } ?? true }
            let epoch = due ? try client.command(["GET", "\(prefix)epoch"]).integer ?? 0 : lastEpoch.withLock { $0.epoch } ?? 0
            if due { lastEpoch.withLock { $0.checked = now } }
            if lastEpoch.withLock({ $0.epoch }) != epoch {
                for (id, json) in try hash("\(prefix)rollouts") {
                    if let number = Int(id.dropFirst()) { state.nextRolloutNumber = max(state.nextRolloutNumber, number + 1) }
                    guard var rollout = Self.decode(Rollout.self, json), state.rollouts[id]?.phase != rollout.phase else { continue }
                    // New here, or its phase moved elsewhere (paused, completed by another
                    // instance): its whole host table as Redis holds it. Once a rollout is no
                    // longer active no beat rereads its hosts, so a table kept from before the
                    // change would stay stale for good. Lease times stay this instance's view.
                    var hosts = try hash("\(prefix)hosts:\(id)").compactMapValues { Self.decode(HostProgress.self, $0) }
                    if let known = state.rollouts[id]?.hosts {
                        for (name, progress) in known { if let lease = progress.leaseUntil { hosts[name]?.leaseUntil = lease } }
                    }
                    rollout.replaceHosts(hosts)
                    state.rollouts[id] = rollout
                }
                // Bindings forgotten elsewhere bump the epoch too: read them all again.
                state.credentials = try hash("\(prefix)credentials")
                lastEpoch.withLock { $0.epoch = epoch }
                wide = true
            }
            // By id: holding a copy of the rollout while changing it would copy its host table.
            if let host, let id = state.activeRolloutID,
               let json = try client.command(["HGET", "\(prefix)hosts:\(id)", host]).text,
               var progress = Self.decode(HostProgress.self, json) {
                // Leases live in the sorted set; keep this instance's view of the lease time.
                progress.leaseUntil = state.rollouts[id]?.hosts[host]?.leaseUntil ?? progress.leaseUntil
                state.rollouts[id]?.set(host, progress)
            }
            if everything, let id = state.activeRolloutID {
                for (name, json) in try hash("\(prefix)hosts:\(id)") {
                    guard var progress = Self.decode(HostProgress.self, json) else { continue }
                    progress.leaseUntil = state.rollouts[id]?.hosts[name]?.leaseUntil ?? progress.leaseUntil
                    state.rollouts[id]?.set(name, progress)
                }
            }
            if everything {
                for (name, json) in try hash("\(prefix)agents") where state.agents[name] == nil {
                    if let agent = Self.decode(AgentRecord.self, json) { state.agents[name] = agent }
                }
            }
            return .null
        }
        return wide
    }

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

    public func refresh(_ state: inout FleetState, host: String) -> Bool { refresh(&state, host: host, everything: false) }
    public func synchronize(_ state: inout FleetState) -> Bool { refresh(&state, host: nil, everything: true) }

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

    static func meta(_ rollout: Rollout) -> Rollout { rollout.withoutHosts }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ json: String) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(json.utf8))
    }
}
