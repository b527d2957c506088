import ArgumentParser
import Fetch
import Foundation
import Glibc

/// Where HBS's admin API is and how to speak to it: `--hbs` (or `FLEDGE_HBS`), the admin token
/// from `--token-file` (or `FLEDGE_TOKEN_FILE`), and the CA for an https HBS.
struct HBSOptions: ParsableArguments {
    @Option(name: .customLong("hbs"), help: "HBS admin URL (default: $FLEDGE_HBS, else http://127.0.0.1:8080).")
    var url: String?

    @Option(help: "File holding the admin bearer token (default: $FLEDGE_TOKEN_FILE).")
    var tokenFile: String?

    @Option(help: "PEM file of the CAs an https HBS must chain to.")
    var ca: String?

    var client: HBSClient {
        get throws {
            let environment = ProcessInfo.processInfo.environment
            let base = url ?? environment["FLEDGE_HBS"] ?? "http://127.0.0.1:8080"
            var token: String?
            if let path = tokenFile ?? environment["FLEDGE_TOKEN_FILE"] {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw HBSError(description: "cannot read the token file \(path)")
                }
                token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return HBSClient(base: base.hasSuffix("/") ? String(base.dropLast()) : base, token: token, caFile: ca)
        }
    }
}

/// Why a call to HBS did not give what was asked.
struct HBSError: Error, CustomStringConvertible {
    let description: String
}

/// HBS's admin API over libcurl (the agent's HTTP client too): JSON in, JSON out, the bearer
/// token on every request, HBS's own error message in every failure.
struct HBSClient {
    let base: String
    let token: String?
    let caFile: String?

    var headers: [String] { token.map { ["Authorization: Bearer \($0)"] } ?? [] }

    /// Sends a request and returns the decoded JSON answer; a status outside 2xx throws with
    /// HBS's `error` (or falcon's `msg`).
    func call(_ method: String, _ path: String, json: Any? = nil) throws -> Any {
        let body = try json.map { Array(try JSONSerialization.data(withJSONObject: $0)) }
        let answer: (status: Int, body: [UInt8])
        do { answer = try Curl.request(method, base + path, body: body, headers: headers, caFile: caFile) } catch {
            throw HBSError(description: "cannot reach HBS at \(base): \(error)")
        }
        let decoded = answer.body.isEmpty ? [String: Any]() : try? JSONSerialization.jsonObject(with: Data(answer.body))
        guard (200..<300).contains(answer.status) else {
            let object = decoded as? [String: Any]
            let message = object?["error"] as? String ?? object?["msg"] as? String ?? String(decoding: answer.body.prefix(300), as: UTF8.self)
            throw HBSError(description: "\(method) \(path): HTTP \(answer.status): \(message)")
        }
        guard let decoded else { throw HBSError(description: "\(method) \(path): the answer is not JSON") }
        return decoded
    }

    /// A call whose answer decodes as `T`.
    func decode<T: Decodable>(_ type: T.Type, _ method: String, _ path: String, json: Any? = nil) throws -> T {
        let answer = try call(method, path, json: json)
        let data = try JSONSerialization.data(withJSONObject: answer)
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw HBSError(description: "\(method) \(path): unexpected answer: \(error)")
        }
    }
}

/// What the terminal can show: colours unless `NO_COLOR` is set or output is not a terminal.
enum Terminal {
    static let isTerminal = isatty(1) == 1
    static let colours = isTerminal && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty

    static func paint(_ text: String, _ code: String) -> String { colours ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    static func red(_ text: String) -> String { paint(text, "31") }
    static func green(_ text: String) -> String { paint(text, "32") }
    static func yellow(_ text: String) -> String { paint(text, "33") }
    static func bold(_ text: String) -> String { paint(text, "1") }

    /// Prints JSON for scripts: sorted keys, one document.
    static func printJSON(_ value: Any) {
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// A table that fits 80 columns: the last column takes what is left and is cut with "…".
struct Table {
    let headers: [String]
    var rows: [[String]] = []

    func render(width: Int = 80) -> String {
        var widths = headers.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        // Columns but the last keep their width up to 24; the last gets the rest of the line.
        for index in widths.indices.dropLast() { widths[index] = min(widths[index], 24) }
        let used = widths.dropLast().reduce(0, +) + 2 * (widths.count - 1)
        widths[widths.count - 1] = max(8, min(widths[widths.count - 1], width - used))
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let fitted = cell.count > widths[index] ? String(cell.prefix(widths[index] - 1)) + "…" : cell
                return index == cells.count - 1 ? fitted : fitted.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([Terminal.bold(line(headers))] + rows.map(line)).joined(separator: "\n")
    }
}

/// Bytes for people: 48.2 MB.
func humanBytes(_ bytes: Double) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = bytes
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f %@", value, units[unit])
}
