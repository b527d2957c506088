import Foundation

/// Finds the executables that tests and benches start: the products of this package (next to
/// the running test bundle or bench) and the system tools they are compared or combined with
/// (nginx, curl, openssl).
public enum Binaries {
    /// Where this package's products are: `FLEDGE_BIN_DIR` if set, else the build directory
    /// the running executable lives in.
    public static var directory: String {
        if let override = ProcessInfo.processInfo.environment["FLEDGE_BIN_DIR"] { return override }
        // The test runner lives in .build/<config>/ beside the products (inside an .xctest on
        // some platforms); walk up until the products are found.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("fledge-seeder").path) { return url.path }
            url.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug").path
    }

    /// A script Fledge ships (`supervise`, `fledge-guard`), where it is installed: in
    /// `FLEDGE_SCRIPTS_DIR` if set; else beside the products as `make install` lays them out
    /// (`PREFIX/bin` and `PREFIX/share/fledge/scripts`); else in this checkout's `scripts/`
    /// (a build tree, where the products live under `.build/`).
    public static func script(_ name: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        if let override = environment["FLEDGE_SCRIPTS_DIR"] { return "\(override)/\(name)" }
        let installed = URL(fileURLWithPath: directory).deletingLastPathComponent()
            .appendingPathComponent("share/fledge/scripts/\(name)").path
        if FileManager.default.isExecutableFile(atPath: installed) { return installed }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/\(name)").path
    }

    /// A file of `deploy/` (the systemd units), where it is installed: beside the products as
    /// `make install` lays them out (`PREFIX/share/fledge/deploy`), else in this checkout.
    public static func deployFile(_ name: String) -> String {
        let installed = URL(fileURLWithPath: directory).deletingLastPathComponent()
            .appendingPathComponent("share/fledge/deploy/\(name)").path
        if FileManager.default.fileExists(atPath: installed) { return installed }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/\(name)").path
    }

    /// The path of `product`, an executable this package builds.
    public static func path(_ product: String) -> String { "\(directory)/\(product)" }

    /// The path of system tool `name`, searched in PATH and then the sbin directories (nginx
    /// lives in /usr/sbin, often not in a user's PATH).
    public static func tool(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw HarnessError(
            "\(name) not found in PATH or the sbin directories; install it (apt-get install \(name == "nginx" ? "nginx-light" : name))")
    }
}
