import Testing
@testable import HBS

/// Where changes wait for their writes, off the control plane's actor: every waiter of a
/// ticket is answered (a change with nothing to write waits for the last one issued), whether
/// it came before or after the write landed, and an undone change is told so.
@Suite struct DurabilityTests {
    @Test(.timeLimit(.minutes(1))) func everyWaiterOfATicketIsAnswered() async {
        let durability = Durability()
        let ticket = durability.issue()
        #expect(durability.lastIssued == ticket)
        async let first = durability.wait(ticket)
        async let second = durability.wait(durability.lastIssued)
        try? await Task.sleep(for: .milliseconds(50))  // both registered before it lands
        durability.landed([ticket])
        #expect(await first)
        #expect(await second)
        #expect(await durability.wait(ticket), "a wait after it landed ends at once")
        #expect(await durability.wait(Durability.durable))
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
    }
}
