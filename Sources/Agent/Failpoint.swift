import Glibc

/// Where a test may make the agent die as a power loss would, between two steps of an install:
/// `FLEDGE_FAILPOINT=NAME:MARKER` SIGKILLs the agent on reaching NAME, once (MARKER is created
/// then, and a later start that finds it goes on). Unset (always, outside tests), it costs one
/// `getenv` per install step.
enum Failpoint {
    static func reach(_ name: String) {
        guard let value = getenv("FLEDGE_FAILPOINT").map({ String(cString: $0) }),
              let colon = value.firstIndex(of: ":"), value[..<colon] == name else { return }
        let marker = String(value[value.index(after: colon)...])
        let fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { return }
        close(fd)
        let line = Array("fledge-agent: failpoint \(name): killed\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        kill(getpid(), SIGKILL)
    }
}
