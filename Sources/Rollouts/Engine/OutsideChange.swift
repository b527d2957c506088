/// What changes made elsewhere (other HBS instances, through a shared store) touched, so the
/// engine keeps what it derives from the state (the peer index) up to date without deriving it
/// all again after every sync.
public enum OutsideChange: Sendable, Equatable {
    case nothing
    /// These hosts' agent records or progress changed.
    case hosts(Set<String>)
    /// More than hosts changed (rollouts, bindings, a reload): derive everything again.
    case everything

    /// Both changes together.
    public func merged(with other: OutsideChange) -> OutsideChange {
        switch (self, other) {
        case (.everything, _), (_, .everything): .everything
        case (.nothing, let change), (let change, .nothing): change
        case (.hosts(let a), .hosts(let b)): .hosts(a.union(b))
        }
    }
}
