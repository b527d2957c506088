import Foundation

/// Processes as /proc (Linux) shows them: CPU time, children, names. Benches charge a
/// server's CPU to it this way, and helpers find the workers a server forks (nginx's).
public enum ProcFS {
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// User + system seconds of this process, all threads.
    public static func ownSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return user + system
    }

    /// User + system seconds of `pid` (0 if it is gone).
    public static func seconds(of pid: Int32) -> Double {
        guard let fields = statFields(pid), fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / ticksPerSecond
    }

    /// CPU seconds of `pid` and everything below it, the living and the ended alike: for each
    /// process user + system time plus that of the children it has waited for (a supervisor
    /// holds its ended agents' time that way). 0 if it is gone.
    public static func treeSeconds(of pid: Int32) -> Double {
        ([pid] + descendants(of: pid)).reduce(0) { total, process in
            guard let fields = statFields(process), fields.count > 14 else { return total }
            return total + [11, 12, 13, 14].compactMap { Double(fields[$0]) }.reduce(0, +) / ticksPerSecond
        }
    }

    /// The direct children of `pid`.
    public static func children(of pid: Int32) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { Int32($0) }.filter { child in
            guard let fields = statFields(child), fields.count > 1 else { return false }
            return Int32(fields[1]) == pid
        }
    }

    /// Every process below `pid`: its children, their children, and so on (a supervisor's agent,
    /// a shell's commands). Read before signalling a parent: once it is gone its children move
    /// to init and can no longer be told from anyone else's.
    public static func descendants(of pid: Int32) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var parents: [Int32: [Int32]] = [:]
        for child in entries.compactMap({ Int32($0) }) {
            guard let fields = statFields(child), fields.count > 1, let parent = Int32(fields[1]) else { continue }
            parents[parent, default: []].append(child)
        }
        var found: [Int32] = [], queue = [pid]
        while let next = queue.popLast() {
            let children = parents[next] ?? []
            found += children
            queue += children
        }
        return found
    }

    /// The command name of `pid` (at most 15 characters), nil if it is gone.
    public static func commandName(of pid: Int32) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/comm") else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The fields of /proc/PID/stat after the command name: state, ppid, ... (field 3 onward).
    private static func statFields(_ pid: Int32) -> [Substring]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// The states (`/proc/net/tcp`'s `st`: 1 established, 6 TIME_WAIT, ...) of this machine's
    /// IPv4 TCP sockets with `port` at either end.
    public static func tcpStates(involving port: Int) -> [Int] {
        // Read to the end: procfs files say they are empty, and a one-size read gets a page.
        guard let file = FileHandle(forReadingAtPath: "/proc/net/tcp") else { return [] }
        defer { try? file.close() }
        guard let data = try? file.readToEnd() else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 3 else { return nil }
            let ports = [fields[1], fields[2]].compactMap { $0.split(separator: ":").last.flatMap { Int($0, radix: 16) } }
            return ports.contains(port) ? Int(fields[3], radix: 16) : nil
        }
    }
}
