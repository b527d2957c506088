// swift-tools-version:6.2
// Fledge: safe, fast self-upgrade for a fleet of host agents.
// Dependencies point one way: executables -> Seeder/HBS/Agent -> Rollouts/Transfer/Swarm -> Wire;
// C libraries only under Transfer and HBS (hiredis).
import PackageDescription

/// Our code builds without a warning, in debug and release: a warning is an error here (the
/// dependencies' own warnings are theirs and stay warnings).
let warningFree: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "Fledge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fledge-seeder", targets: ["fledge-seeder"]),
        .executable(name: "fledge-hbs", targets: ["fledge-hbs"]),
        .executable(name: "fledgectl", targets: ["fledgectl"]),
        .executable(name: "fledge-agent", targets: ["fledge-agent"]),
        .executable(name: "fledge-bench", targets: ["fledge-bench"]),
        .executable(name: "fledge-demo", targets: ["fledge-demo"]),
        .library(name: "Transfer", targets: ["Transfer"]),
        .library(name: "Fetch", targets: ["Fetch"]),
        .library(name: "Wire", targets: ["Wire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries, each behind a module map and a small shim header.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // Linux calls the Glibc module hides (sync_file_range), and sd_notify's one datagram.
        .target(name: "CLinux", swiftSettings: warningFree),

        // Codable types both ends speak. No server code, so the agent stays lean.
        .target(name: "Wire", swiftSettings: warningFree),

        // The swarm policy, pure: which piece next, from which source, deadlines, hedges, when a
        // source is out. The agent's downloader and the fleet simulator both run it.
        .target(name: "Swarm", dependencies: ["Wire"], swiftSettings: warningFree),

        // Rollouts, pure: the model, the engine (admission, sweeps, failure budget), the source
        // planner and peer index. No I/O, no clock: HBS drives it from beats and its stores, the
        // fleet simulator from virtual agents.
        .target(name: "Rollouts", dependencies: ["Wire"], swiftSettings: warningFree),

        // The data plane's common ground: hashing and signing (OpenSSL), the piece store,
        // availability, rate limits, and the range server (SwiftNIO). What HBS shares with it
        // (digests, durable files, listener hygiene) comes without an HTTP client.
        .target(
            name: "Transfer",
            dependencies: [
                "Wire", "Swarm", "COpenSSL", "CLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),

        // Fetching: the libcurl wrapper and the multi-source downloader (DownloadSession runs the
        // swarm policy over libcurl's socket API); the agent, the seeder's mirror and the benches.
        .target(
            name: "Fetch",
            dependencies: [
                "Transfer", "Wire", "Swarm", "CCurl", "CLinux",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),

        // The origin: publish signed releases, serve them.
        .target(
            name: "Seeder",
            dependencies: ["Transfer", "Fetch", "Wire", .product(name: "Logging", package: "swift-log")],
            swiftSettings: warningFree
        ),
        .executableTarget(
            name: "fledge-seeder",
            dependencies: [
                "Seeder", "Transfer", "Fetch", "Wire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/fledge-seeder",
            swiftSettings: warningFree
        ),

        // The control plane: the engine behind an actor, its stores (embedded, Redis), the agent
        // and admin APIs over HTTP(S).
        .target(
            name: "HBS",
            dependencies: [
                "Rollouts", "Transfer", "Wire", "CHiredis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),
        // The operator's command line: rollouts, agents, falcon's calls, a live watch.
        .executableTarget(
            name: "fledgectl",
            dependencies: [
                "Rollouts", "Fetch", "Wire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/fledgectl",
            swiftSettings: warningFree
        ),
        .executableTarget(
            name: "fledge-hbs",
            dependencies: [
                "HBS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/fledge-hbs",
            swiftSettings: warningFree
        ),

        // The endpoint: heartbeats, self-upgrade, peer piece server, /metrics. Links neither
        // HBS nor Redis, and no Foundation beyond FoundationEssentials where it can.
        .target(
            name: "Agent",
            dependencies: [
                "Transfer", "Fetch", "Wire", "Swarm", "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),
        .executableTarget(
            name: "fledge-agent",
            dependencies: [
                "Agent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/fledge-agent",
            swiftSettings: warningFree
        ),

        // A whole fleet on one machine: HBS, seeders, N supervised agents as real processes.
        // What `make demo` and `fledge-bench fleet` run.
        .target(
            name: "LocalFleet",
            dependencies: [
                "Transfer", "Wire", "Seeder", "ProcessHarness",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),
        .executableTarget(
            name: "fledge-demo",
            dependencies: ["LocalFleet", "ProcessHarness", "Wire", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/fledge-demo",
            swiftSettings: warningFree
        ),

        // Benchmarks: each compares against a reference measured in the same run.
        .executableTarget(
            name: "fledge-bench",
            dependencies: [
                "Transfer", "Fetch", "Wire", "Swarm", "Seeder", "ProcessHarness", "LocalFleet", "Rollouts", "FleetSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "bench/Sources/fledge-bench",
            swiftSettings: warningFree
        ),

        // The fleet simulator behind `fledge-bench simulate`: virtual agents and a max-min fair
        // network in virtual time, driving the real rollout engine. Pure, so it is unit-tested.
        .target(name: "FleetSimulation", dependencies: ["Rollouts", "Swarm", "Wire"], path: "bench/Sources/FleetSimulation", swiftSettings: warningFree),
        .testTarget(
            name: "FleetSimulationTests",
            dependencies: [
                "FleetSimulation", "Rollouts", "Swarm", "Wire", "Transfer", "Fetch", "FledgeTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/Tests/FleetSimulationTests", swiftSettings: warningFree),

        // Real processes on loopback: children and their cleanup, free ports, raw HTTP, fledge-hbs,
        // fledge-seeder, scripts/supervise, nginx, redis-server, openssl certificates. What the
        // demo, LocalFleet, the benches and the tests start their processes with.
        .target(
            name: "ProcessHarness",
            dependencies: ["Wire", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: warningFree
        ),

        // What only tests need: test releases, the hostile peer, slow clients.
        .target(
            name: "FledgeTesting",
            dependencies: ["ProcessHarness", "Transfer", "Wire", "Swarm", "Seeder", .product(name: "SystemPackage", package: "swift-system")],
            path: "Tests/FledgeTesting",
            swiftSettings: warningFree
        ),
        .testTarget(name: "WireTests", dependencies: ["Wire"], swiftSettings: warningFree),
        .testTarget(name: "SwarmTests", dependencies: ["Swarm", "Wire"], swiftSettings: warningFree),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "Agent", "Seeder", "Wire", "Transfer", "Fetch", "FledgeTesting", "LocalFleet", "fledge-agent", "fledge-seeder", "fledge-hbs",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),
        .testTarget(
            name: "HBSTests",
            dependencies: [
                "HBS", "Rollouts", "Wire", "Swarm", "FledgeTesting", "fledge-hbs",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),
        .testTarget(
            name: "TransferTests",
            dependencies: [
                "Transfer", "Fetch", "Wire", "Swarm", "FledgeTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),
        .testTarget(
            name: "SeederTests",
            dependencies: [
                "Seeder", "Transfer", "Fetch", "Wire", "FledgeTesting", "fledge-seeder",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: warningFree
        ),
    ],
    swiftLanguageModes: [.v6]
)
