import CLinux
import Glibc

/// Runs a short command (the new binary's self-test, a health probe, `systemd-analyze`) with
/// posix_spawn: output captured, and a deadline that holds whatever the child does (closes its
/// output and hangs, forks, ignores SIGTERM): past it the child's whole process group is
/// SIGKILLed. No signal is blocked in the child. Kept here so the agent needs no full Foundation
/// (`Process` would pull it in, with ICU: megabytes of resident memory on every host).
enum Subprocess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// How a command ended: its exit status (128 + signal when killed), its combined output,
    /// and whether it was killed for running past its deadline.
    struct Outcome {
        let status: Int32
        let output: String
        let timedOut: Bool

        /// The end of its output, on one line: what a person needs in a failure's reason.
        var lastLines: String {
            String(output.split(whereSeparator: \.isNewline).suffix(3).joined(separator: " / ").suffix(300))
        }
    }

    static func run(_ path: String, _ arguments: [String], timeout: Duration = .seconds(30)) throws -> Outcome {
        var fds: [Int32] = [0, 0]
        // Not inherited by anything else this process starts meanwhile (a probe beside a self-test).
        guard fledge_pipe_cloexec(&fds) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        // The agent ignores SIGTERM and SIGINT (it handles them itself) and SIGPIPE; a child
        // must not inherit that, or `timeout` and friends could not stop what they run.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGPIPE] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // A group of its own: what it starts is killed with it.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

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
        let deadline = ContinuousClock.now + timeout
        var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        var open = true
        var status: Int32 = 0
        var exited = false
        // Read until the output closes and the child has exited, or the deadline passes.
        while ContinuousClock.now < deadline {
            if open {
                poller.revents = 0
                guard poll(&poller, 1, 100) >= 0 || errno == EINTR else { break }
                if poller.revents != 0 {
                    let count = read(fds[0], &buffer, buffer.count)
                    if count <= 0 { open = false } else if output.count < 64 * 1024 { output += buffer[0..<count] }
                }
            } else {
                usleep(20_000)
            }
            if waitpid(pid, &status, WNOHANG) == pid {
                exited = true
                if !open { break }
                // Drain what it wrote before exiting; a grandchild holding the pipe open does
                // not keep us here (the deadline still holds, and the group is killed below).
                open = false
                while ContinuousClock.now < deadline, poll(&poller, 1, 0) > 0,
                      case let count = read(fds[0], &buffer, buffer.count), count > 0, output.count < 64 * 1024 {
                    output += buffer[0..<count]
                }
                break
            }
        }
        close(fds[0])
        kill(-pid, SIGKILL)  // the deadline passed, or leftovers of its group
        if !exited { while waitpid(pid, &status, 0) < 0 && errno == EINTR {} }
        let signal = status & 0x7f
        return Outcome(
            status: signal == 0 ? (status >> 8) & 0xff : 128 + signal, output: String(decoding: output, as: UTF8.self),
            timedOut: !exited)
    }
}
