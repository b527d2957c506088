import Foundation

/// The scripts in `Tests/Fixtures` that tests run as real processes (a hostile peer, slowloris
/// clients, the dashboard's browser check), found from this file's place in the repository.
public enum Fixtures {
    public static func path(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(name)").path
    }
}
