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
        /// Tickets whose changes were undone, as ranges: a failed write undoes its group and
        /// every change after it, one run of tickets, and the next failure's run starts
        /// where that one ended, so a long outage (a full disk) stays one range. Kept, as a
        /// later change resting on one of them asks too.
        var undone: [ClosedRange<Int>] = []

        func wasUndone(_ ticket: Int) -> Bool { undone.contains { $0.contains(ticket) } }
        /// Several may wait for one ticket: a change with nothing of its own to write waits
        /// for the last one issued.
        var waiters: [Int: [CheckedContinuation<Bool, Never>]] = [:]
    }

    private let state = Mutex(State())

    /// A ticket that needs no write: what it rests on is durable already.
    static let durable = 0

    /// Runs of undone tickets kept (one per failure that followed a success).
    var undoneRuns: Int { state.withLock { $0.undone.count } }

    /// The next change's ticket (called on the actor, as the change is applied).
    func issue() -> Int {
        state.withLock { state in
            state.issued += 1
            return state.issued
        }
    }

    /// What a change with nothing of its own to write rests on: the last ticket issued,
    /// while it is not settled; once it is, nothing (`durable`): not even a ticket that was
    /// undone, or every quiet beat after a failed write would be answered as not stored.
    var lastUnsettled: Int {
        state.withLock { $0.issued > $0.settled ? $0.issued : Self.durable }
    }

    /// True once `ticket` is durable, false when it was undone.
    func wait(_ ticket: Int) async -> Bool {
        // Most beats change nothing and rest on what is durable already: answered without a
        // continuation (whose resumption would cost the beat another trip through the executor).
        let settled: Bool? = state.withLock { state in
            if state.wasUndone(ticket) { return false }
            return ticket <= state.settled ? true : nil
        }
        if let settled { return settled }
        return await withCheckedContinuation { continuation in
            let known: Bool? = state.withLock { state in
                if state.wasUndone(ticket) { return false }
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
            for ticket in tickets { woken += state.waiters.removeValue(forKey: ticket) ?? [] }
            if !durable, let first = tickets.min(), let last = tickets.max() {
                if let previous = state.undone.last, previous.upperBound + 1 >= first {
                    state.undone[state.undone.count - 1] = previous.lowerBound...max(previous.upperBound, last)
                } else {
                    state.undone.append(first...last)
                }
            }
            state.settled = max(state.settled, tickets.max() ?? 0)
            return woken
        }
        for waiter in woken { waiter.resume(returning: durable) }
    }
}
