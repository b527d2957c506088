import Foundation
import ProcessHarness

/// The curl command line as the reference client: `count` processes started together, each
/// downloading a whole URL (`curl -s -o FILE URL`), timed from the first start to the last exit.
enum CurlClients {
    /// Runs the clients; checks that each got HTTP 200 and `expectedSize` bytes. Returns the
    /// wall-clock seconds. `output(i)` is client i's file (`/dev/null` to discard).
    static func download(url: String, clients count: Int, expectedSize: Int64, output: (Int) -> String) async throws -> Double {
        let curl = try Binaries.tool("curl")
        var children: [ChildProcess] = []
        let start = ContinuousClock.now
        do {
            for index in 0..<count {
                children.append(try ChildProcess(
                    curl, ["-s", "-S", "--noproxy", "*", "-o", output(index), "-w", "%{http_code} %{size_download}", url]))
            }
        } catch {
            for child in children { await child.stop() }
            throw error
        }
        var exits: [ChildProcess.Exit] = []
        for child in children { exits.append(await child.wait()) }
        let seconds = (ContinuousClock.now - start).seconds
        for (child, exit) in zip(children, exits) {
            guard exit.succeeded else {
                throw BenchError.tool("curl \(url): \(exit): \(child.stderr.prefix(300))")
            }
            let report = child.stdout.split(separator: " ")
            guard report.count == 2, report[0] == "200", Int64(report[1]) == expectedSize else {
                throw BenchError.check("curl \(url): expected HTTP 200 with \(expectedSize) bytes, got '\(child.stdout)'")
            }
        }
        return seconds
    }
}
