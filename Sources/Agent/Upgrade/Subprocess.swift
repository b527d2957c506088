import Glibc

/// Runs a short command (the new binary's self-test) with posix_spawn: output captured, a
/// deadline, no signal blocked in the child. Kept here so the agent needs no full Foundation
/// (`Process` would pull it in, with ICU: megabytes of resident memory on every host).
enum Subprocess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Exit status (128 + signal when killed) and combined stdout/stderr.
    static func run(_ path: String, _ arguments: [String], timeoutSeconds: Int = 30) throws -> (Int32, String) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw Failure(description: "cannot start \(path): \(String(cString: strerror(spawned)))")
        }

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        while ContinuousClock.now < deadline {
            guard poll(&poller, 1, 200) >= 0 || errno == EINTR else { break }
            guard poller.revents != 0 else { continue }
            let count = read(fds[0], &buffer, buffer.count)
            if count <= 0 { break }
            if output.count < 64 * 1024 { output += buffer[0..<count] }
        }
        close(fds[0])
        if ContinuousClock.now >= deadline { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return (signal == 0 ? (status >> 8) & 0xff : 128 + signal, String(decoding: output, as: UTF8.self))
    }
}
