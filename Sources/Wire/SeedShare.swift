/// The share of a release a CDN seed fetches first, as HBS hands it out in the seed's order:
/// seed `index` of `count` ranks pieces `p` with `p % count == index` ahead of others just as
/// rare, so hosts fetching from a CDN together get different pieces and have something to
/// trade at once (super-seeding). A seed asks the CDN only for pieces none of its peers holds.
public struct SeedShare: Codable, Sendable, Equatable {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Whether `piece` is in this seed's share.
    public func contains(_ piece: Int) -> Bool { count > 0 && piece % count == ((index % count) + count) % count }
}
