import Foundation
import ProcessHarness

/// What the agent's required parts cost before a line of Fledge runs: tiny programs that load
/// libcurl and OpenSSL (one request, one digest) or the Swift runtime and FoundationEssentials
/// (statically, one JSON round trip), built here with this machine's cc and swiftc and run to
/// report their own resident memory. The agent's idle RSS cannot go below their sum.
enum AgentFloor {
    struct Probe: Sendable {
        let name: String
        let key: String
        let rssMB: Double
    }

    /// Each probe's RSS; a probe whose compiler is missing is left out (with a line on stderr).
    static func measure(in directory: TemporaryDirectory) async -> [Probe] {
        var probes: [Probe] = []
        for program in programs {
            do {
                let source = directory.string + "/floor-\(program.key).\(program.language.fileExtension)"
                let binary = directory.string + "/floor-\(program.key)"
                try Data(program.source.utf8).write(to: URL(fileURLWithPath: source))
                let compiler = try Binaries.tool(program.language.compiler)
                _ = try await ChildProcess.run(compiler, program.language.arguments(source: source, output: binary) + program.libraries)
                let (out, _) = try await ChildProcess.run(binary, [])
                guard let kilobytes = out.split(whereSeparator: \.isWhitespace).lazy.compactMap({ Double($0) }).first else {
                    throw BenchError.check("floor probe \(program.key) printed \(out)")
                }
                probes.append(Probe(name: program.name, key: program.key, rssMB: kilobytes * 1024 / 1e6))
            } catch {
                Bench.progress("floor probe \(program.key) skipped: \(error)")
            }
        }
        return probes
    }

    private enum Language {
        case c, swift
        var fileExtension: String { self == .c ? "c" : "swift" }
        var compiler: String { self == .c ? "cc" : "swiftc" }
        func arguments(source: String, output: String) -> [String] {
            switch self {
            case .c: ["-O2", source, "-o", output]
            case .swift: ["-O", "-static-stdlib", source, "-o", output]
            }
        }
    }

    private struct Program {
        let key: String
        let name: String
        let language: Language
        let libraries: [String]
        let source: String
    }

    /// Each ends by printing its VmRSS line's value (`1304 kB`).
    private static let cReport = #"""
        static void report(void) {
            FILE *f = fopen("/proc/self/status", "r"); char line[256];
            while (fgets(line, sizeof line, f)) if (!strncmp(line, "VmRSS:", 6)) { printf("%s", line + 6); }
        }
        """#
    private static let swiftReport = #"""
        let status = fopen("/proc/self/status", "r")
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, 256, status) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmRSS:") { print(text.dropFirst(6), terminator: "") }
        }
        """#

    private static let programs: [Program] = [
        Program(key: "c", name: "floor: a C program (libc)", language: .c, libraries: [], source: """
            #include <stdio.h>
            #include <string.h>
            \(cReport)
            int main(void) { report(); return 0; }
            """),
        Program(key: "curl_openssl", name: "floor: C + libcurl + OpenSSL", language: .c, libraries: ["-lcurl", "-lcrypto"], source: """
            #include <stdio.h>
            #include <string.h>
            #include <curl/curl.h>
            #include <openssl/evp.h>
            \(cReport)
            int main(void) {
                curl_global_init(CURL_GLOBAL_DEFAULT);
                CURL *easy = curl_easy_init();
                curl_easy_setopt(easy, CURLOPT_URL, "http://127.0.0.1:1/");
                curl_easy_perform(easy);
                unsigned char digest[EVP_MAX_MD_SIZE]; unsigned int length;
                EVP_Digest("fledge", 6, digest, &length, EVP_sha256(), NULL);
                report(); return 0;
            }
            """),
        Program(key: "swift", name: "floor: Swift runtime (static)", language: .swift, libraries: [], source: """
            import Glibc
            \(swiftReport)
            """),
        Program(key: "swift_foundation", name: "floor: Swift + FoundationEssentials (static)", language: .swift, libraries: [], source: """
            import FoundationEssentials
            import Glibc
            struct Beat: Codable { var hostname: String; var version: String }
            let data = try! JSONEncoder().encode(Beat(hostname: "h", version: "1.0.0"))
            _ = try! JSONDecoder().decode(Beat.self, from: data)
            \(swiftReport)
            """),
    ]

    /// What the required parts alone keep resident: libcurl and OpenSSL over libc, plus the
    /// Swift runtime and FoundationEssentials (each probe counts libc and the loader once).
    static func requiredMB(_ probes: [Probe]) -> Double? {
        func rss(_ key: String) -> Double? { probes.first { $0.key == key }?.rssMB }
        guard let c = rss("c"), let curl = rss("curl_openssl"), let swift = rss("swift_foundation") else { return nil }
        return curl + swift - c
    }
}
