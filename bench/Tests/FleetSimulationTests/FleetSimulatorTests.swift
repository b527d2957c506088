import Testing

@testable import FleetSimulation

/// Small fleets through the real engine: everyone ends upgraded, no run beats the bound, and
/// the bytes add up.
@Suite struct FleetSimulatorTests {
    /// 16 hosts, 8 MiB in 256 KiB pieces, hosts 1 MiB/s up and down, 2 CDNs of 4 MiB/s.
    static func small(hosts: Int = 16) -> SimulationParameters {
        var parameters = SimulationParameters()
        parameters.hosts = hosts
        parameters.idcs = 2
        parameters.racksPerIDC = 2
        parameters.releaseBytes = 8 << 20
        parameters.pieceBytes = 256 << 10
        parameters.hostUpload = Double(1 << 20)
        parameters.hostDownload = Double(1 << 20)
        parameters.cdns = 2
        parameters.cdnUpload = Double(4 << 20)
        parameters.stepSeconds = 0.01
        return parameters
    }

    @Test(arguments: SimulationMode.allCases) func everyHostUpgradesNoFasterThanTheBound(mode: SimulationMode) throws {
        let parameters = Self.small()
        var simulator = FleetSimulator(parameters: parameters, mode: mode)
        let result = try simulator.run()
        #expect(result.settled)
        #expect(result.confirmTimes.count == 16)
        #expect(result.failedHosts == 0)
        let t100 = try #require(result.t100)
        #expect(t100 >= parameters.minimumTime(mode))
        let distribution = try #require(result.distributionSeconds)
        #expect(distribution >= parameters.minimumTime(mode) * 0.999)
        // Every host got every byte once.
        #expect(abs(result.originBytes + result.peerBytes - result.wastedBytes - 16 * Double(parameters.releaseBytes)) < 1)
        if !mode.peersServe { #expect(result.peerBytes == 0) }
    }

    @Test func originOnlyIsBoundByTheOrigin() throws {
        let parameters = Self.small()
        var simulator = FleetSimulator(parameters: parameters, mode: .origin)
        let result = try simulator.run()
        // 16 x 8 MiB at 4 MiB/s: at least 32 s.
        #expect(parameters.originOnlyTime == 32)
        #expect(try #require(result.t100) >= 32)
    }

    @Test func peersRelayingPiecesTakeMostBytesOffTheCDNs() throws {
        var simulator = FleetSimulator(parameters: Self.small(hosts: 32), mode: .peerPiece)
        let result = try simulator.run()
        #expect(result.settled)
        #expect(result.peerBytes > result.originBytes)
    }

    @Test func badHostsAreRetriedThenGivenUp() throws {
        var parameters = Self.small()
        parameters.failureRate = 0.25
        var simulator = FleetSimulator(parameters: parameters, mode: .peerPiece)
        let bad = simulator.agents.filter(\.bad).count
        #expect(bad > 0)
        let result = try simulator.run()
        #expect(result.settled)
        #expect(result.failedHosts == bad)
        #expect(result.failures == bad * 3)  // maxAttempts
        #expect(result.confirmTimes.count == 16 - bad)
    }

    /// Beats whose answer cannot differ, and sweeps that cannot change anything, are skipped:
    /// without peers the run is the same as with every beat and a sweep every second, but for
    /// where steps fall (transfers start at the end of a step, and fewer events end steps).
    @Test(arguments: [SimulationMode.origin, .cdnBatches]) func skippingWhatCannotMatterChangesNothing(mode: SimulationMode) throws {
        var parameters = Self.small()
        parameters.failureRate = 0.2
        parameters.elideBeats = false
        var full = FleetSimulator(parameters: parameters, mode: mode)
        let every = try full.run()
        parameters.elideBeats = true
        parameters.sweepSeconds = 60
        var elided = FleetSimulator(parameters: parameters, mode: mode)
        let fewer = try elided.run()
        #expect(fewer.engine.elidedBeats > 0)
        #expect(fewer.engine.sweeps.count < every.engine.sweeps.count)
        #expect(every.engine.elidedBeats == 0)
        let slack = 3 * parameters.stepSeconds
        #expect(fewer.confirmTimes.count == every.confirmTimes.count)
        for (a, b) in zip(fewer.confirmTimes, every.confirmTimes) { #expect(abs(a - b) <= slack) }
        #expect(fewer.failedHosts == every.failedHosts)
        #expect(fewer.failures == every.failures)
        #expect(abs(fewer.originBytes - every.originBytes) <= Double(parameters.pieceBytes))
        #expect(abs(try #require(fewer.lastVerified) - #require(every.lastVerified)) <= slack)
    }

    /// Where peers serve, the engine's planner turns its window of candidates on every call, so
    /// fewer calls give another (as good) swarm: the runs agree in outcome, not to the step.
    @Test(arguments: [SimulationMode.peerFile, .peerPiece]) func skippingBeatsKeepsTheOutcomeWithPeers(mode: SimulationMode) throws {
        var parameters = Self.small(hosts: 32)
        parameters.elideBeats = false
        var full = FleetSimulator(parameters: parameters, mode: mode)
        let every = try full.run()
        parameters.elideBeats = true
        var elided = FleetSimulator(parameters: parameters, mode: mode)
        let fewer = try elided.run()
        #expect(fewer.engine.elidedBeats > 0)
        #expect(fewer.settled && every.settled)
        let (a, b) = (try #require(fewer.t100), try #require(every.t100))
        #expect(abs(a - b) <= 0.25 * b)
    }

    @Test func aCanaryAndBatchesTakeLongerThanOneBatch() throws {
        var parameters = Self.small()
        var one = FleetSimulator(parameters: parameters, mode: .peerPiece)
        let single = try #require(try one.run().t100)
        parameters.canary = 2
        parameters.batchPercentages = [25, 50]
        var batched = FleetSimulator(parameters: parameters, mode: .peerPiece)
        let result = try batched.run()
        #expect(result.settled)
        #expect(try #require(result.t100) > single)
    }

    /// With HBS's measured answer rate, the last host hears of the rollout once the rollout is
    /// durable and its instance has answered its share of the fleet: more instances, sooner;
    /// and the first batch (the canary) before everyone else.
    @Test func theControlPlaneTakesWhatHBSTakesToAnswer() throws {
        var parameters = Self.small(hosts: 64)
        parameters.hbs = HBSService(instances: 1, createSecondsPerHost: 0.001, answersPerSecond: 32, followSeconds: 0.25)
        var one = FleetSimulator(parameters: parameters, mode: .peerPiece)
        let single = try #require(try one.run().controlPlaneSeconds)
        #expect(abs(single - (0.064 + 64.0 / 32)) < 0.01, "created in 64 ms, then 64 hosts at 32/s: \(single)")
        parameters.hbs?.instances = 4
        var four = FleetSimulator(parameters: parameters, mode: .peerPiece)
        let spread = try #require(try four.run().controlPlaneSeconds)
        #expect(abs(spread - (0.064 + 0.25 + 16.0 / 32)) < 0.01, "16 hosts an instance, the others 250 ms later: \(spread)")

        parameters.hbs?.instances = 1
        parameters.canary = 2
        parameters.batchPercentages = [100]
        var canary = FleetSimulator(parameters: parameters, mode: .peerPiece)
        let result = try canary.run()
        #expect(result.settled)
        #expect(abs(try #require(result.firstOrder) - (0.064 + 1.0 / 32)) < 0.01, "the canary's hosts are answered first")
    }
}
