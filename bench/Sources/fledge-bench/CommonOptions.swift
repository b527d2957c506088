import ArgumentParser

/// Options every bench takes: how big the test file is, how often each measurement runs, and
/// where temporary files go.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("size-mib"), help: "Size of the test file in MiB.")
    var sizeMiB: Int = 256

    @Option(name: .customLong("repeat"), help: "Timed runs of each measurement; the best one counts.")
    var repeats: Int = 3

    @Option(help: "Directory to create the temporary directory in (default: /tmp). It is removed at the end.")
    var workdir: String?

    var sizeBytes: Int64 { Int64(sizeMiB) << 20 }

    func validate() throws {
        if sizeMiB <= 0 { throw ValidationError("--size-mib must be positive") }
        if repeats <= 0 { throw ValidationError("--repeat must be positive") }
    }
}
