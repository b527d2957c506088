import Foundation

/// Runs blocking work (sockets) on a thread of its own, so tests that block do not starve the
/// small cooperative pool (or Dispatch's, as small) that every test shares.
public enum Blocking {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }
}
