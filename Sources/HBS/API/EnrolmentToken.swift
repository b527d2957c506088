import Synchronization
import Wire

/// The fleet's enrolment token, as the agent listener checks it. Given in a file, or made by
/// HBS: once in the embedded store's directory, or once in Redis for every instance. With
/// Redis unreachable at start the token is looked up again at the next enrolment (which is
/// refused with 503 until then); beats of enrolled hosts never need it.
final class EnrolmentToken: Sendable {
    private let cached: Mutex<String?>
    private let lookUp: @Sendable () -> String?

    init(fixed token: String) {
        cached = Mutex(token)
        lookUp = { token }
    }

    init(lookUp: @escaping @Sendable () -> String?) {
        cached = Mutex(lookUp())
        self.lookUp = lookUp
    }

    /// The token, or nil while it cannot be read.
    var current: String? {
        if let token = cached.withLock({ $0 }) { return token }
        let token = lookUp()
        cached.withLock { if $0 == nil { $0 = token } }
        return cached.withLock { $0 }
    }
}

/// 256 random bits, hex: an enrolment token nobody gave, a host's secret.
func randomSecret() -> String {
    var random = SystemRandomNumberGenerator()
    return Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
}
