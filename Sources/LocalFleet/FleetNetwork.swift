/// How a local fleet's links are built and who paces their bytes. The caps are the plan's
/// either way (`FleetPlan.originBytesPerSecond`, `agentDownloadBytesPerSecond`,
/// `agentUploadBytesPerSecond`); what differs is who holds them.
public enum FleetNetwork: String, Sendable, CaseIterable {
    /// Every process on 127.0.0.1; Fledge's own rate limiters hold the caps (the seeder's
    /// `--rate`, the agents' `downloadBytesPerSecond` and `peerUploadBytesPerSecond`), and the
    /// loopback carries bytes as fast as they are written.
    case loopback
    /// A network namespace per agent and per origin on a Linux bridge, `tc tbf` on both ends of
    /// each veth (see `KernelLinks`); Fledge's rate limiters are off, so TCP and the kernel
    /// pace the bytes as on real links. Needs root.
    case namespaces

    /// How links were shaped, as reports say it.
    public var linksDescription: String {
        switch self {
        case .loopback: "fledge rate limits"
        case .namespaces: "kernel tbf"
        }
    }
}
