import FledgeTesting
import Foundation
import LocalFleet
import Testing

/// The dashboard in a real headless Chromium (Tests/Fixtures/dashboard-check.py, Selenium on
/// Debian's chromium and chromium-driver) against a real HBS and real agents (LocalFleet) while
/// a rollout runs: the page shows what the API shows, an injected failing host appears with its
/// reason, the agents table filters, a narrow screen does not overflow, and Pause pauses.
@Suite(.serialized) struct DashboardBrowserTests {
    static let browserReady = FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
        && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/selenium")


    @Test(.enabled(if: browserReady, "make test installs chromium, chromium-driver and python3-selenium"))
    func theDashboardFollowsARolloutAndPausesIt() async throws {
        try await TemporaryDirectory.with("fledge-dashboard") { directory in
            var plan = FleetPlan()
            plan.agents = 4
            plan.fastBeatSeconds = 0.5
            // Slow enough that the rollout is still running when the browser looks: the stamped
            // agent (tens of MB) at 3 MB/s per host, two at a time.
            plan.agentDownloadBytesPerSecond = 3_000_000
            let fleet = try await LocalFleet.start(plan, in: directory.string)
            do {
                _ = try await fleet.publishTarget()
                // A host that fails on purpose, speaking the agent protocol itself.
                let bad = "host-bad"
                let idle = #"{"hostname":"\#(bad)","ip":"127.0.0.1","version":"1.0.0","labels":{"idc":"b","rack":"r9"},"state":"idle","held":[]}"#
                _ = try await fleet.hbs.beat(idle)
                var rollout = RolloutPlan()
                rollout.maxConcurrent = 2
                rollout.failureBudget = 5
                rollout.canary = 0
                let (id, _) = try await fleet.startRollout(rollout)
                var ordered = false
                for _ in 0..<200 where !ordered {
                    let (_, body) = try await fleet.hbs.beat(idle)
                    ordered = (body as? [String: Any])?["order"] != nil
                    if !ordered { try await Task.sleep(for: .milliseconds(250)) }
                }
                #expect(ordered, "the injected host was admitted")
                let reason = "injected failure: the disk is read-only"
                _ = try await fleet.hbs.beat(#"{"hostname":"\#(bad)","ip":"127.0.0.1","version":"1.0.0","labels":{"idc":"b","rack":"r9"},"state":"failed","rolloutId":"\#(id)","error":"\#(reason)","held":[]}"#)

                let screenshot = ProcessInfo.processInfo.environment["FLEDGE_DASHBOARD_SCREENSHOT"] ?? directory.string + "/dashboard.png"
                // Debian's python3, the one python3-selenium is installed for (a PATH python may not have it).
                let child = try ChildProcess("/usr/bin/python3", [
                    Fixtures.path("dashboard-check.py"), "--admin", "http://127.0.0.1:\(fleet.hbs.adminPort)", "--failed-host", bad, "--reason", reason,
                    "--screenshot", screenshot,
                ])
                let exit = await child.wait(timeout: .seconds(150))
                #expect(exit.succeeded, "\(child.stdout) \(child.stderr.suffix(3000))")
                let result = try? JSONSerialization.jsonObject(with: Data(child.stdout.utf8)) as? [String: Any]
                #expect(result?["ok"] as? Bool == true, "\(child.stdout)")
                print("dashboard checks: \((result?["checks"] as? [String] ?? []).joined(separator: "; "))")
                let summary = try await fleet.hbs.admin("GET", "/v1/rollouts/\(id)").body as? [String: Any]
                #expect(summary?["phase"] as? String == "paused", "\(String(describing: summary))")
                #expect(FileManager.default.fileExists(atPath: screenshot))
            } catch {
                await fleet.stop()
                throw error
            }
            await fleet.stop()
        }
    }
}
