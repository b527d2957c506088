import Foundation
import ProcessHarness

/// The package's own executables a bench starts (fledge-hbs, fledge-agent, fledge-seeder) are
/// the release builds beside this executable, not whatever `Binaries` would find first, unless
/// FLEDGE_BIN_DIR says otherwise: a bench measures release code.
enum ReleaseProducts {
    /// Points `Binaries` at this executable's directory and checks every product in `names` is
    /// there.
    static func use(_ names: [String]) throws {
        if ProcessInfo.processInfo.environment["FLEDGE_BIN_DIR"] == nil {
            let directory = URL(fileURLWithPath: try ownExecutable()).deletingLastPathComponent().path
            setenv("FLEDGE_BIN_DIR", directory, 1)
        }
        for name in names {
            let path = Binaries.path(name)
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw BenchError.tool("\(path) not found: build it beside fledge-bench (swift build -c release --product \(name), same --scratch-path), or set FLEDGE_BIN_DIR")
            }
            Bench.progress("\(name): \(path)")
        }
    }

    /// This executable (the bench, which is also the hello server).
    static func ownExecutable() throws -> String {
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            throw BenchError.io("cannot resolve /proc/self/exe")
        }
        return path
    }
}
