import Hummingbird
import NIOCore

/// Hummingbird's request context plus the peer's address, which the admin API's authority
/// check needs.
public struct HBSRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Heartbeats and admin requests are small; anything larger is refused with 413.
    public var maxUploadSize: Int { 1 << 20 }
}
