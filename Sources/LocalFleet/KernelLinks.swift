import Foundation
import ProcessHarness
import Synchronization

/// The network of a fleet whose links the kernel shapes (`FleetNetwork.namespaces`), so that
/// TCP meets real queues, drops and round trips instead of Fledge's rate limiters: a Linux
/// bridge in this (the root) network namespace holding `bridgeAddress`, and one network
/// namespace per agent and per origin, joined to the bridge by a veth pair (`eth0` inside, the
/// namespace's own name outside), with an address of `subnet` and `lo` up. Each cap is a
/// `tc tbf` (`TokenBucket`) on an egress: the namespace side of a veth caps what the host
/// sends (its uplink), the bridge side what it receives (its downlink: every byte into the
/// namespace leaves the bridge through that port, so its egress queue is the host's access
/// link, as a switch port's would be; no `ifb` device and redirect needed).
///
/// Needs root, `ip` and `tc`. Every name starts with `fl` and this process's pid in base 36
/// (`fl1a2b-br`, `fl1a2b-a1`, `fl1a2b-o1`; at most 15 characters), so what a killed run left
/// behind is recognised (its pid no longer runs) and removed by the next one. `teardown()`
/// removes everything; so does `Cleanup` on SIGINT/SIGTERM, and this object's deinit.
public final class KernelLinks: Sendable {
    /// One namespace on the bridge: an agent or an origin.
    public struct Node: Sendable {
        /// The namespace's name, also the name of its veth's bridge side in the root namespace.
        public var namespace: String
        /// Its IPv4 address (prefix length 16).
        public var address: String
        /// The caps on what it sends and what it receives; nil: that way is not shaped.
        public var uplink: TokenBucket?
        public var downlink: TokenBucket?
    }

    /// What the links carried: bytes from the bridge side's interface counters (frames: payload
    /// and headers, retransmissions included), and packets the agents' downlink queues dropped
    /// (tbf's own count). A namespace's uplink is what its bridge port received, its downlink
    /// what the port sent.
    public struct Counters: Sendable {
        public var originsUp: Int64 = 0
        public var agentsUp: Int64 = 0
        public var agentsDown: Int64 = 0
        public var agentDownlinkDrops: Int64 = 0

        public static func - (later: Counters, earlier: Counters) -> Counters {
            Counters(originsUp: later.originsUp - earlier.originsUp, agentsUp: later.agentsUp - earlier.agentsUp,
                     agentsDown: later.agentsDown - earlier.agentsDown,
                     agentDownlinkDrops: later.agentDownlinkDrops - earlier.agentDownlinkDrops)
        }
    }

    /// The fleet's private network; chosen to be unlikely to clash with anything the machine
    /// routes already (checked at start).
    public static let subnet = "10.231.0.0/16"
    /// The bridge's address: where HBS listens for agents.
    public static let bridgeAddress = "10.231.0.1"

    /// `fl` and this process's pid in base 36: the start of every name this run creates.
    public let prefix: String
    public let agents: [Node]
    public let origins: [Node]
    public var bridge: String { prefix + "-br" }
    private var nodes: [Node] { origins + agents }
    /// Serialises teardowns (the owner's and a signal's); holds the `Cleanup` registration and
    /// whether a teardown has run to its end.
    private let state = Mutex<(cleanup: Cleanup.TeardownID?, removed: Bool)>((nil, false))

    /// The names and addresses of a fleet of `agents` and `origins`, nothing created yet.
    /// Agents are 10.231.2.1, .2, ... (250 to a /24, then 10.231.3.x), origins 10.231.1.1, ...
    init(agents: Int, origins: Int, agentDown: TokenBucket?, agentUp: TokenBucket?, originUp: TokenBucket?) {
        prefix = Self.ownPrefix
        self.agents = (0..<agents).map { index in
            Node(namespace: "\(Self.ownPrefix)-a\(index + 1)", address: "10.231.\(2 + index / 250).\(1 + index % 250)",
                 uplink: agentUp, downlink: agentDown)
        }
        self.origins = (0..<origins).map { index in
            Node(namespace: "\(Self.ownPrefix)-o\(index + 1)", address: "10.231.1.\(1 + index)", uplink: originUp, downlink: nil)
        }
    }

    /// Most agents and origins a namespaced fleet can have (names fit 15 characters, addresses
    /// the subnet).
    static let maximumAgents = 9999
    static let maximumOrigins = 250

    /// Creates the network for `plan` (its caps, as tbf) after removing what a killed earlier
    /// run left behind; the shell script it runs is kept as `directory/links.sh`. On any failure
    /// whatever was created is removed again, and the error says what to do.
    static func create(for plan: FleetPlan, in directory: String, log: @Sendable (String) -> Void) async throws -> KernelLinks {
        if let reason = unavailableReason() { throw LocalFleetError.namespacesUnavailable(reason) }
        try removeLeftovers(log: log)
        let links = KernelLinks(
            agents: plan.agents, origins: plan.origins,
            agentDown: plan.agentDownloadBytesPerSecond.map(TokenBucket.init), agentUp: plan.agentUploadBytesPerSecond.map(TokenBucket.init),
            originUp: plan.originBytesPerSecond.map(TokenBucket.init))
        // Listed before anything exists: a signal during set-up removes what was made so far.
        // The signal's teardown runs whatever the owner did: a signal stops the owner's own
        // teardown halfway (it kills its `sh`).
        let id = Cleanup.shared.addTeardown { [weak links] in links?.removeEverything(again: true) }
        links.state.withLock { $0.cleanup = id }
        let script = links.setupScript
        let path = directory + "/links.sh"
        do {
            try Data(("#!/bin/sh -e\n# The kernel-shaped links of this fleet (LocalFleet, FleetNetwork.namespaces)\n" + script.joined(separator: "\n") + "\n").utf8)
                .write(to: URL(fileURLWithPath: path))
            let child = try ChildProcess("/bin/sh", ["-e", "-x", "-c", script.joined(separator: "\n")], name: "links.sh")
            let exit = await child.wait()
            guard exit.succeeded else { throw Self.setupFailure(stderr: child.stderr) }
        } catch {
            await Blocking.teardown(links)
            throw error
        }
        return links
    }

    /// The commands that build the network, one shell line each (run with `sh -e`).
    var setupScript: [String] {
        let bridge = self.bridge
        var lines = [
            "ip link add name \(bridge) type bridge",
            "ip addr add \(Self.bridgeAddress)/16 dev \(bridge)",
            "ip link set dev \(bridge) up",
        ]
        for node in nodes {
            let ns = node.namespace
            lines += [
                "ip netns add \(ns)",
                "ip link add name \(ns) type veth peer name eth0 netns \(ns)",
                "ip link set dev \(ns) master \(bridge) up",
                "ip -n \(ns) addr add \(node.address)/16 dev eth0",
                "ip -n \(ns) link set dev lo up",
                "ip -n \(ns) link set dev eth0 up",
            ]
            if let up = node.uplink { lines.append("tc -n \(ns) qdisc add dev eth0 root " + up.tcArguments.joined(separator: " ")) }
            if let down = node.downlink { lines.append("tc qdisc add dev \(ns) root " + down.tcArguments.joined(separator: " ")) }
        }
        return lines
    }

    /// Removes everything `create` made, blocking until it is done: every process left in the
    /// namespaces is killed, each veth pair deleted (its qdiscs go with it), each namespace and
    /// the bridge. Safe to call again, and from a signal's teardown at the same time.
    public func teardown() {
        removeEverything(again: false)
        if let id = state.withLock({ $0.cleanup }) { Cleanup.shared.removeTeardown(id) }
    }

    /// Removes everything, unless a teardown has run to its end already and not `again`.
    private func removeEverything(again: Bool) {
        state.withLock { state in
            guard again || !state.removed else { return }
            Self.remove(namespaces: nodes.map(\.namespace), bridges: [bridge])
            state.removed = true
        }
    }

    deinit {
        removeEverything(again: false)
        if let id = state.withLock({ $0.cleanup }) { Cleanup.shared.removeTeardown(id) }
    }

    /// What the links of agents and origins have carried so far. Blocks for one `tc` run.
    public func counters() -> Counters {
        func counter(_ name: String, _ which: String) -> Int64 {
            guard let data = FileManager.default.contents(atPath: "/sys/class/net/\(name)/statistics/\(which)") else { return 0 }
            return Int64(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        var counters = Counters()
        for node in origins { counters.originsUp += counter(node.namespace, "rx_bytes") }
        for node in agents {
            counters.agentsUp += counter(node.namespace, "rx_bytes")
            counters.agentsDown += counter(node.namespace, "tx_bytes")
        }
        // The downlinks' qdiscs are in this namespace: one `tc -s -j qdisc show` lists them all.
        let downlinks = Set(agents.filter { $0.downlink != nil }.map(\.namespace))
        if !downlinks.isEmpty, let tc = try? Binaries.tool("tc"), let shown = try? ChildProcess.runBlocking(tc, ["-s", "-j", "qdisc", "show"]),
           let qdiscs = try? JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [[String: Any]] {
            for qdisc in qdiscs where qdisc["kind"] as? String == "tbf" && downlinks.contains(qdisc["dev"] as? String ?? "") {
                counters.agentDownlinkDrops += (qdisc["drops"] as? NSNumber)?.int64Value ?? 0
            }
        }
        return counters
    }

    // MARK: - Whether it can run

    /// Why a namespaced fleet cannot run on this machine, nil if it can: not root, `ip` or `tc`
    /// missing, or the kernel refusing a namespace, a veth, a bridge or tbf (tried in a
    /// throwaway namespace, touching nothing else).
    public static func unavailableReason() -> String? {
        guard geteuid() == 0 else {
            return "network namespaces, veth, bridges and tc need root: run as root, or use the loopback network (FleetNetwork.loopback; fledge-bench fleet without --netns)"
        }
        for tool in ["ip", "tc"] where (try? Binaries.tool(tool)) == nil {
            return "\(tool) not found: install iproute2 (apt-get install iproute2)"
        }
        let probe = ownPrefix + "-probe"
        let script = """
            ip netns add \(probe) || exit 1
            ip -n \(probe) link add name va type veth peer name vb && ip -n \(probe) link add name vbr type bridge \
            && tc -n \(probe) qdisc add dev va root tbf rate 8mbit burst 16384 limit 65536
            status=$?
            ip netns del \(probe)
            exit $status
            """
        guard let child = try? ChildProcess("/bin/sh", ["-c", script], name: "netns probe") else { return "cannot start /bin/sh" }
        while child.isRunning { usleep(1000) }
        guard child.exit?.succeeded == true else {
            return "this kernel refuses what a namespaced fleet needs (a network namespace, a veth pair, a bridge, tc tbf): \(child.stderr.trimmingCharacters(in: .whitespacesAndNewlines).suffix(400))"
        }
        return nil
    }

    // MARK: - Names, leftovers

    /// `fl` and this process's pid in base 36.
    static let ownPrefix = "fl" + String(getpid(), radix: 36)

    /// The pid whose run created `name` (`fl<pid base 36>-br|-aN|-oN|-probe`), nil if it is
    /// not such a name.
    static func owner(of name: String) -> Int32? {
        guard name.hasPrefix("fl"), let dash = name.firstIndex(of: "-") else { return nil }
        let id = name[name.index(name.startIndex, offsetBy: 2)..<dash], role = name[name.index(after: dash)...]
        let numbered = { (letter: Character) in role.first == letter && role.count > 1 && role.dropFirst().allSatisfy(\.isNumber) }
        guard !id.isEmpty, id.allSatisfy({ $0.isNumber || ("a"..."z").contains($0) }),
              role == "br" || role == "probe" || numbered("a") || numbered("o") else { return nil }
        return Int32(id, radix: 36)
    }

    /// Links (root namespace) and network namespaces named like a fleet's, by owner pid.
    static func existing() -> [Int32: (links: [String], namespaces: [String])] {
        var found: [Int32: (links: [String], namespaces: [String])] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? [] {
            if let pid = owner(of: name) { found[pid, default: ([], [])].links.append(name) }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? [] {
            if let pid = owner(of: name) { found[pid, default: ([], [])].namespaces.append(name) }
        }
        return found
    }

    /// Removes what runs that no longer exist left behind; refuses to start beside a fleet
    /// that still runs (they would share the subnet), or on a machine that routes the subnet
    /// already.
    static func removeLeftovers(log: @Sendable (String) -> Void) throws(LocalFleetError) {
        for (pid, names) in existing().sorted(by: { $0.key < $1.key }) {
            let all = (names.links + names.namespaces).sorted()
            if pid == getpid() {
                throw .networkInUse("this process already runs a namespaced fleet (\(all.prefix(4).joined(separator: ", ")), ...): stop() it before starting another")
            }
            if kill(pid, 0) == 0 {
                let command = ProcFS.commandName(of: pid) ?? "?"
                throw .networkInUse("process \(pid) (\(command)) runs a namespaced fleet on \(subnet) (\(all.prefix(4).joined(separator: ", ")), ...): wait for it or stop it. If it is no fleet (its pid was reused), remove them: \(removalCommands(namespaces: names.namespaces, links: names.links))")
            }
            log("removing what a killed run (pid \(pid)) left: \(all.count) links and namespaces")
            let bridges = names.links.filter { $0.hasSuffix("-br") }
            remove(namespaces: Set(names.namespaces + names.links.filter { !bridges.contains($0) }).sorted(), bridges: bridges)
        }
        guard let ip = try? Binaries.tool("ip"),
              let shown = try? ChildProcess.runBlocking(ip, ["-o", "-4", "addr", "show", "to", subnet]) else { return }
        if shown.exit.succeeded, !shown.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw .networkInUse("this machine has addresses in \(subnet) already, which a namespaced fleet needs for itself; remove them (ip addr del ADDRESS dev DEVICE) or run the fleet on loopback:\n\(shown.stdout)")
        }
    }

    /// `ip link del` and `ip netns del` lines for `links` and `namespaces`.
    private static func removalCommands(namespaces: [String], links: [String]) -> String {
        (links.map { "ip link del dev \($0)" } + namespaces.map { "ip netns del \($0)" }).joined(separator: "; ")
    }

    /// Kills every process in `namespaces`, then deletes the bridge-side veth named like each
    /// (which deletes the pair and its qdiscs), each namespace, and `bridges`. Ignores what is
    /// already gone. Blocks until done.
    static func remove(namespaces: [String], bridges: [String]) {
        for pid in processes(in: namespaces) { kill(pid, SIGKILL) }
        let lines = namespaces.flatMap { ["ip link del dev \($0) 2>/dev/null", "ip netns del \($0) 2>/dev/null"] }
            + bridges.map { "ip link del dev \($0) 2>/dev/null" }
        guard !lines.isEmpty else { return }
        _ = try? ChildProcess.runBlocking("/bin/sh", ["-c", lines.joined(separator: "\n") + "\nexit 0"])
    }

    /// Processes whose network namespace is one of `namespaces` (compared by the inode of
    /// /run/netns/NAME and /proc/PID/ns/net, as `ip netns pids` does).
    static func processes(in namespaces: [String]) -> [Int32] {
        var inodes = Set<UInt64>()
        for name in namespaces {
            var info = stat()
            if stat("/run/netns/\(name)", &info) == 0 { inodes.insert(UInt64(info.st_ino)) }
        }
        guard !inodes.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap(Int32.init).filter { pid in
            var info = stat()
            return pid != getpid() && stat("/proc/\(pid)/ns/net", &info) == 0 && inodes.contains(UInt64(info.st_ino))
        }
    }

    /// The error for a failed set-up script: the command `sh -x` traced last, and what followed.
    private static func setupFailure(stderr: String) -> LocalFleetError {
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: true)
        let index = lines.lastIndex { $0.hasPrefix("+ ") }
        let command = index.map { String(lines[$0].dropFirst(2)) } ?? "?"
        let output = index.map { lines[($0 + 1)...].joined(separator: "\n") } ?? stderr
        return .networkSetupFailed(command: command, output: output)
    }
}

extension Blocking {
    /// `links.teardown()` on a thread of its own: it waits for `ip` and `sh`.
    static func teardown(_ links: KernelLinks) async {
        _ = try? await run { links.teardown() }
    }
}
