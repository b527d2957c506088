import SystemPackage
import Transfer

/// What a release's unit file must keep for an install to stay safe, checked before the switch:
/// the guard as a pre-start step (it is what rolls a bad release back), `Type=notify` (so the
/// manager waits for the agent to get ready) and an absolute `ExecStart=`. Where systemd runs,
/// `systemd-analyze verify` must pass on it too. A unit that fails either is refused: the host
/// stays on its release.
enum UnitFileCheck {
    /// What is wrong with the unit `text`, if anything.
    static func problems(in text: String) -> [String] {
        var section = ""
        var service: [String: [String]] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingASCIIWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                section = String(line)
                continue
            }
            guard section == "[Service]", let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals].trimmingASCIIWhitespace())
            service[key, default: []].append(String(line[line.index(after: equals)...].trimmingASCIIWhitespace()))
        }
        var problems: [String] = []
        if service.isEmpty { problems.append("it has no [Service] section") }
        let start = service["ExecStart"]?.last?.drop { "-@+!:".contains($0) } ?? ""
        if !start.hasPrefix("/") { problems.append("ExecStart= must name an absolute path, is '\(start)'") }
        if service["Type"]?.last != "notify" { problems.append("Type= must be notify (the agent says when it is ready), is '\(service["Type"]?.last ?? "simple")'") }
        // Its failure must fail the start: a "-" prefix would let a release the guard refuses run.
        if !(service["ExecStartPre"] ?? []).contains(where: { $0.split(separator: " ").first?.hasSuffix("/fledge-guard") == true }) {
            problems.append("ExecStartPre= must run fledge-guard, by an absolute path and without '-' (it rolls a bad release back)")
        }
        return problems
    }

    /// `systemd-analyze verify` on the staged unit, where systemd runs the host and reads the
    /// unit: its complaints when it fails. Judged by its exit status: it warns about other units
    /// it loads on some systems, which is no reason to refuse this one.
    static func verify(_ path: FilePath, installedAt target: FilePath?) -> [String] {
        let tool = "/usr/bin/systemd-analyze"
        guard let target, UpgradeExecutor.systemdReads(target), Files.exists(FilePath(tool)) else { return [] }
        guard let outcome = try? Subprocess.run(tool, ["verify", path.string], timeout: .seconds(30)) else {
            return ["systemd-analyze could not run"]
        }
        guard outcome.status != 0 else { return [] }
        return ["systemd-analyze verify exited \(outcome.status): \(outcome.lastLines)"]
    }
}
