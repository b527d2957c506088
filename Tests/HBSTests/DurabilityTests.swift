import Testing
@testable import HBS

/// Where changes wait for their writes, off the control plane's actor: every waiter of a
/// ticket is answered (a change with nothing to write waits for the last one issued), whether
/// it came before or after the write landed, and an undone change is told so.
@Suite struct DurabilityTests {
    @Test(.timeLimit(.minutes(1))) func everyWaiterOfATicketIsAnswered() async {
        let durability = Durability()
        let ticket = durability.issue()
        #expect(durability.lastUnsettled == ticket)
        async let first = durability.wait(ticket)
        async let second = durability.wait(durability.lastUnsettled)
        try? await Task.sleep(for: .milliseconds(50))  // both registered before it lands
        durability.landed([ticket])
        #expect(await first)
        #expect(await second)
        #expect(await durability.wait(ticket), "a wait after it landed ends at once")
        #expect(await durability.wait(Durability.durable))
        #expect(durability.lastUnsettled == Durability.durable, "once everything settled, a change with nothing to write rests on nothing")
    }

    @Test(.timeLimit(.minutes(1))) func anUndoneChangeIsToldSoBeforeAndAfter() async {
        let durability = Durability()
        let kept = durability.issue()
        let lost = durability.issue()
        durability.landed([kept])
        async let waiting = durability.wait(lost)
        try? await Task.sleep(for: .milliseconds(50))
        durability.undone([lost])
        #expect(await waiting == false)
        #expect(await durability.wait(lost) == false, "asked again, still undone")
        #expect(await durability.wait(kept))
        let later = durability.issue()
        durability.landed([later])
        #expect(await durability.wait(lost) == false, "a later write does not make it durable")
        #expect(durability.lastUnsettled == Durability.durable, "nor does what rests on nothing inherit the failure")
    }

    /// A long outage (every write failing, each undoing what came after the last) is kept as
    /// one run of tickets, not a ticket each; a failure after a success starts a new one.
    @Test func undoneRunsAreKeptAsRanges() async {
        let durability = Durability()
        for _ in 0..<1000 {
            let group = (0..<3).map { _ in durability.issue() }
            durability.undone(group)
        }
        let kept = durability.issue()
        durability.landed([kept])
        let lost = durability.issue()
        durability.undone([lost])
        #expect(durability.undoneRuns == 2)
        #expect(await durability.wait(1) == false && durability.undoneRuns == 2)
        #expect(await durability.wait(3000) == false)
        #expect(await durability.wait(kept))
        #expect(await durability.wait(lost) == false)
    }
}
