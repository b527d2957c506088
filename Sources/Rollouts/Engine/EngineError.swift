/// Why the engine refused an operator's request.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case invalid(ValidationError)
    case notFound(String)
    case conflict(String)

    public var description: String {
        switch self {
        case .invalid(let error): error.description
        case .notFound(let id): "no rollout '\(id)'"
        case .conflict(let reason): reason
        }
    }
}
