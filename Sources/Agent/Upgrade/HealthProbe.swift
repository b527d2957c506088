import Fetch

/// A check a release declares in its config (`healthProbe`) that must keep passing through its
/// commit window: a command that exits 0, or a local URL that answers 200. Either runs at most
/// `timeoutSeconds` (a command is then killed with its process group).
public struct HealthProbe: Codable, Sendable, Equatable {
    /// Argument vector, the first an absolute path (no shell unless it names one).
    public var command: [String]?
    /// An `http://` URL, normally on loopback.
    public var url: String?
    public var intervalSeconds: Double = 5
    public var timeoutSeconds: Double = 10

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        command = try container.decodeIfPresent([String].self, forKey: .command)
        url = try container.decodeIfPresent(String.self, forKey: .url)
        intervalSeconds = try container.decodeIfPresent(Double.self, forKey: .intervalSeconds) ?? intervalSeconds
        timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? timeoutSeconds
    }

    /// What is wrong with the declaration, if anything.
    var problem: String? {
        if (command == nil) == (url == nil) { return "give exactly one of command and url" }
        if let command, command.first?.hasPrefix("/") != true { return "command[0] must be an absolute path" }
        if let url, !url.hasPrefix("http://") && !url.hasPrefix("https://") { return "url must be http(s)" }
        if !(intervalSeconds >= 0.1) || !(timeoutSeconds >= 0.1) { return "intervalSeconds and timeoutSeconds must be at least 0.1" }
        return nil
    }

    /// Nil when healthy, else why not (blocks up to `timeoutSeconds`).
    func check() -> String? {
        if let command, let path = command.first {
            do {
                let outcome = try Subprocess.run(path, Array(command.dropFirst()), timeout: .milliseconds(Int(timeoutSeconds * 1000)))
                if outcome.timedOut { return "health probe \(path) did not finish within \(timeoutSeconds) s" }
                if outcome.status != 0 {
                    return "health probe \(path) exited \(outcome.status): \(outcome.lastLines)"
                }
                return nil
            } catch {
                return "health probe: \(error)"
            }
        }
        guard let url else { return nil }
        do {
            _ = try Curl.get(url, limit: 64 << 10, timeoutSeconds: max(1, Int(timeoutSeconds.rounded(.up))))
            return nil
        } catch {
            return "health probe \(error)"
        }
    }
}
