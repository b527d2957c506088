/// Who is where: hosts spread round-robin over `idcs` x `racksPerIDC` racks (labels `idc` and
/// `rack`, as the real agents report them), each with a hostname, an address and a peer port,
/// and the CDNs. Nodes are numbered hosts first (`0..<hostCount`), then CDNs.
public struct FleetTopology: Sendable {
    public static let peerPort = 7070

    public let hostCount: Int
    public let idcs: Int
    public let racksPerIDC: Int
    public let cdnCount: Int
    public let hostnames: [String]
    public let ips: [String]
    /// Every host's labels; hosts of one rack share one dictionary.
    public let labels: [[String: String]]
    /// Rack of each host, `0..<idcs * racksPerIDC`.
    public let rackOf: [Int32]
    public let cdnURLs: [String]
    /// Base URL of every node: a host's peer URL as HBS builds it, a CDN's URL.
    public let urls: [String]
    private let nodeByURL: [String: Int32]
    private let hostByName: [String: Int32]

    public init(hosts: Int, idcs: Int, racksPerIDC: Int, cdns: Int) {
        hostCount = hosts
        self.idcs = idcs
        self.racksPerIDC = racksPerIDC
        cdnCount = cdns
        let racks = idcs * racksPerIDC
        let width = max(5, String(hosts - 1).count)
        var hostnames: [String] = [], ips: [String] = [], rackOf: [Int32] = []
        hostnames.reserveCapacity(hosts)
        ips.reserveCapacity(hosts)
        rackOf.reserveCapacity(hosts)
        let rackLabels = (0..<racks).map { rack in
            ["idc": "idc\(rack / racksPerIDC)", "rack": "idc\(rack / racksPerIDC)-rack\(rack % racksPerIDC)"]
        }
        var labels: [[String: String]] = []
        labels.reserveCapacity(hosts)
        for host in 0..<hosts {
            let digits = String(host)
            hostnames.append("host-" + String(repeating: "0", count: max(0, width - digits.count)) + digits)
            let address = host + 1  // no .0 address
            ips.append("10.\(address >> 16).\((address >> 8) & 255).\(address & 255)")
            rackOf.append(Int32(host % racks))
            labels.append(rackLabels[host % racks])
        }
        self.hostnames = hostnames
        self.ips = ips
        self.rackOf = rackOf
        self.labels = labels
        cdnURLs = (0..<cdns).map { "http://cdn\($0).sim" }
        urls = ips.map { "http://\($0):\(Self.peerPort)" } + cdnURLs
        var nodeByURL: [String: Int32] = [:], hostByName: [String: Int32] = [:]
        nodeByURL.reserveCapacity(urls.count)
        hostByName.reserveCapacity(hosts)
        for (node, url) in urls.enumerated() { nodeByURL[url] = Int32(node) }
        for (host, name) in hostnames.enumerated() { hostByName[name] = Int32(host) }
        self.nodeByURL = nodeByURL
        self.hostByName = hostByName
    }

    public var nodeCount: Int { hostCount + cdnCount }

    public func isCDN(_ node: Int) -> Bool { node >= hostCount }

    /// The node a source URL of an order names (with or without a trailing slash).
    public func node(of url: String) -> Int? {
        if let node = nodeByURL[url] { return Int(node) }
        return url.hasSuffix("/") ? nodeByURL[String(url.dropLast())].map(Int.init) : nil
    }

    public func host(named name: String) -> Int? { hostByName[name].map(Int.init) }
}
