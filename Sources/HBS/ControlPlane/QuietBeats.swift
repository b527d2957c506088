import Rollouts
import Synchronization
import Wire

/// The hosts whose beats the control plane answers without its actor, on whatever core the
/// request arrived: those the engine says change nothing but their time of last beat
/// (`RolloutEngine.quietInterval`), most of a fleet between rollouts and the done hosts
/// during one. Beats of different hosts then never wait on each other.
///
/// The actor keeps it true to the engine: it publishes a host after taking its beat, forgets
/// a host when an event or another instance's change touches it, and clears everything when
/// a rollout is created or moves, state comes in from elsewhere, or a write fails. A beat
/// answered here counts as taken just before whatever the actor does next. Its record waits
/// here until the actor takes it (`takeSeen`) before anything that reads when hosts were
/// last seen (a sweep, a new rollout, the API). What it holds of a host shares its storage
/// with the engine's record: about 200 bytes a quiet host.
final class QuietBeats: Sendable {
    /// What answers a quiet host's beats.
    private struct Quiet {
        /// Its record when published: a beat with another identity is news, for the actor.
        let agent: AgentRecord
        /// The digest its beats were authenticated with (nil: HBS takes anonymous beats).
        let credential: String?
        let interval: Double
    }

    private struct Shard {
        var quiet: [String: Quiet] = [:]
        /// Beats answered here, the last of each host's, for the engine.
        var seen: [String: QuietBeat] = [:]
    }

    /// One lock per shard of hosts, so cores answering different hosts rarely meet.
    private final class Locked: Sendable {
        let shard = Mutex(Shard())
    }

    private let shards: [Locked]

    init(shards: Int = 16) {
        self.shards = (0..<max(1, shards)).map { _ in Locked() }
    }

    private func shard(of host: String) -> Locked {
        shards[Int(UInt(bitPattern: host.hashValue) % UInt(shards.count))]
    }

    /// The answer to `beat`, taken at `now`, when its host is quiet, its identity unchanged,
    /// `credential` the one it was published with (nil: HBS takes anonymous beats) and the
    /// store has nothing to read first (`storeAgrees`, asked only then: a beat the actor takes
    /// is noted by the store's refresh there); nil when the actor must take it (and refuse it,
    /// if its credential is wrong).
    func answer(
        _ beat: HeartbeatRequest, credential: CredentialDigest?, now: Int64, storeAgrees: () -> Bool
    ) -> HeartbeatReply? {
        shard(of: beat.hostname).shard.withLock { shard in
            // A miss (most beats during a rollout) costs a lookup; only a hit builds a record.
            guard let quiet = shard.quiet[beat.hostname], quiet.agent.sameIdentity(as: AgentRecord(beat, now: now)) else { return nil }
            if let credential {
                guard let known = quiet.credential, credential.matches(known) else { return nil }
            }
            guard storeAgrees() else { return nil }
            shard.seen[beat.hostname] = QuietBeat(beat, at: now)
            return HeartbeatReply(nextBeatSeconds: quiet.interval)
        }
    }

    /// `agent`'s host is quiet: its beats get `interval` while they keep its identity and
    /// present `credential` (the engine's own string, shared). (On the actor, right after
    /// taking its beat.)
    func publish(_ agent: AgentRecord, credential: String?, interval: Double) {
        shard(of: agent.hostname).shard.withLock { shard in
            shard.quiet[agent.hostname] = Quiet(agent: agent, credential: credential, interval: interval)
        }
    }

    /// These hosts' beats go to the actor again.
    func forget(_ hosts: some Sequence<String>) {
        for host in hosts {
            _ = shard(of: host).shard.withLock { $0.quiet.removeValue(forKey: host) }
        }
    }

    /// Every beat goes to the actor again (records of beats already answered stay to be taken).
    func clear() {
        for locked in shards { locked.shard.withLock { $0.quiet = [:] } }
    }

    /// The beats answered here since the last call.
    func takeSeen() -> [QuietBeat] {
        var seen: [QuietBeat] = []
        for locked in shards {
            seen += locked.shard.withLock { shard in
                defer { shard.seen.removeAll(keepingCapacity: true) }
                return Array(shard.seen.values)
            }
        }
        return seen
    }

    /// Hosts quiet now.
    var count: Int { shards.reduce(0) { $0 + $1.shard.withLock { $0.quiet.count } } }
}
