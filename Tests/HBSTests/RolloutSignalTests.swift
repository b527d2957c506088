import Synchronization
import Testing
@testable import HBS

/// A rollout's start wakes every waiting beat, those of its current batch first.
@Suite struct RolloutSignalTests {
    final class Woken: Sendable {
        let names = Mutex<[String]>([])
    }

    @Test func theHostsAdmissibleNowAreWokenFirst() async throws {
        let signal = RolloutSignal()
        let woken = Woken()
        let hosts = (0..<60).map { "h\($0)" }
        let first: Set<String> = ["h7", "h19", "h33", "h52"]
        await withTaskGroup(of: Void.self) { group in
            for host in hosts {
                group.addTask {
                    if await signal.wait(upTo: .seconds(20), host: host) { woken.names.withLock { $0.append(host) } }
                }
            }
            // All waiting (the pool may be busy with other suites: wait for them, not a guess).
            for _ in 0..<600 where signal.waiting < hosts.count { try? await Task.sleep(for: .milliseconds(50)) }
            signal.fire(first: first)
        }
        let order = woken.names.withLock { $0 }
        #expect(order.count == hosts.count, "every waiter woke")
        // Woken first; tasks then run on a shared pool, so allow a little reordering.
        #expect(Set(order.prefix(first.count * 4)).isSuperset(of: first), "\(order.prefix(16))")
    }

    /// The others are woken once every woken host of the first batch has its answer, so
    /// their wake-ups and answers do not compete with the first batch's; or, should one of
    /// those never come back, after the signal's patience.
    @Test func theOthersWaitForTheFirstBatchToBeatAgain() async throws {
        for patience in [Duration.seconds(60), .milliseconds(100)] {
            let signal = RolloutSignal(firstBatchPatience: patience)
            let woken = Woken()
            let hosts = ["a", "b", "c", "d"]
            await withTaskGroup(of: Void.self) { group in
                for host in hosts {
                    group.addTask {
                        if await signal.wait(upTo: .seconds(60), host: host) { woken.names.withLock { $0.append(host) } }
                    }
                }
                for _ in 0..<600 where signal.waiting < hosts.count { try? await Task.sleep(for: .milliseconds(10)) }
                signal.fire(first: ["a", "b"])
                for _ in 0..<600 where woken.names.withLock({ $0.count }) < 2 { try? await Task.sleep(for: .milliseconds(10)) }
                if patience == .seconds(60) {
                    #expect(Set(woken.names.withLock { $0 }) == ["a", "b"], "the first batch alone")
                    signal.beatAnswered(from: "a")
                    try? await Task.sleep(for: .milliseconds(50))
                    #expect(woken.names.withLock { $0.count } == 2, "b is not back yet")
                    signal.beatAnswered(from: "b")
                }
            }
            #expect(Set(woken.names.withLock { $0 }) == Set(hosts), "patience \(patience): everyone woke")
        }
    }

    /// A wait ends by itself when its time runs out, and at once when its task is cancelled;
    /// nothing is left waiting afterwards.
    @Test func waitsEndOnTimeAndOnCancellation() async throws {
        let signal = RolloutSignal()
        let started = ContinuousClock.now
        let fired = await signal.wait(upTo: .milliseconds(200), host: "a")
        let waited = ContinuousClock.now - started
        #expect(!fired && waited >= .milliseconds(200), "timed out after \(waited)")
        let task = Task { await signal.wait(upTo: .seconds(60), host: "b") }
        for _ in 0..<200 where signal.waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
        task.cancel()
        #expect(await task.value == false)
        #expect(signal.waiting == 0)
        // A wait after the ticking stopped starts it again.
        try await Task.sleep(for: .milliseconds(300))
        #expect(await signal.wait(upTo: .milliseconds(100)) == false)
    }

    /// A beat answered "nothing to do" just before a rollout started (the fire came between its
    /// answer and its wait) is not left waiting for the fire it missed: it ends at once, and a
    /// wait from the current generation still waits.
    @Test func aWaitAfterAMissedFireEndsAtOnce() async {
        let signal = RolloutSignal()
        let heard = signal.generation
        signal.fire()  // nobody waits yet: the beat is still on its way back
        let started = ContinuousClock.now
        #expect(await signal.wait(upTo: .seconds(60), host: "a", since: heard))
        #expect(ContinuousClock.now - started < .seconds(30), "it did not wait for a fire it had missed")
        #expect(signal.waiting == 0)
        #expect(await signal.wait(upTo: .milliseconds(100), host: "a", since: signal.generation) == false)
    }
}
