import Synchronization

/// Where a change applied on the control plane's actor waits for its write, off the actor.
/// Each change gets the next ticket, in the order changes are applied; writes land in that
/// order, so a change is durable once its group has landed, and is undone (never durable)
/// when its group's write failed. A beat's answer waits here, not for the actor: at a
/// rollout's start the actor is busy with thousands of woken beats, and the answers of those
/// already written go out meanwhile.
final class Durability: Sendable {
    private struct State {
        var issued = 0
        /// Every ticket up to this one has landed or was undone.
        var settled = 0
        /// Tickets whose changes were undone (write failures are rare: kept, never cleared,
        /// as a later change resting on one of them asks too).
        var undone: Set<Int> = []
        /// Several may wait for one ticket: a change with nothing of its own to write waits
        /// for the last one issued.
        var waiters: [Int: [CheckedContinuation<Bool, Never>]] = [:]
    }

    private let state = Mutex(State())

    /// A ticket that needs no write: what it rests on is durable already.
    static let durable = 0

    /// The next change's ticket (called on the actor, as the change is applied).
    func issue() -> Int {
        state.withLock { state in
            state.issued += 1
            return state.issued
        }
    }

    /// The last ticket issued: a change with nothing of its own to write rests on it.
    var lastIssued: Int { state.withLock { $0.issued } }

    /// True once `ticket` is durable, false when it was undone.
    func wait(_ ticket: Int) async -> Bool {
        // Most beats change nothing and rest on what is durable already: answered without a
        // continuation (whose resumption would cost the beat another trip through the executor).
        let settled: Bool? = state.withLock { state in
            if state.undone.contains(ticket) { return false }
            return ticket <= state.settled ? true : nil
        }
        if let settled { return settled }
        return await withCheckedContinuation { continuation in
            let known: Bool? = state.withLock { state in
                if state.undone.contains(ticket) { return false }
                if ticket <= state.settled { return true }
                state.waiters[ticket, default: []].append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    /// These tickets (one group, in order) are durable.
    func landed(_ tickets: [Int]) {
        settle(tickets, as: true)
    }

    /// These tickets' changes were undone: their write failed.
    func undone(_ tickets: [Int]) {
        settle(tickets, as: false)
    }

    private func settle(_ tickets: [Int], as durable: Bool) {
        guard !tickets.isEmpty else { return }
        let woken = state.withLock { state in
            var woken: [CheckedContinuation<Bool, Never>] = []
            for ticket in tickets {
                if !durable { state.undone.insert(ticket) }
                woken += state.waiters.removeValue(forKey: ticket) ?? []
            }
            state.settled = max(state.settled, tickets.max() ?? 0)
            return woken
        }
        for waiter in woken { waiter.resume(returning: durable) }
    }
}
