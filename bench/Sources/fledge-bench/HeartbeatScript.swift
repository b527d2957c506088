import Foundation
import SystemPackage

/// The wrk Lua script of `fledge-bench hbs`: every request POSTs one JSON heartbeat of an idle
/// agent, the hostname cycling through `hosts` distinct names. wrk thread i sends the names
/// i, i + threads, i + 2 * threads, ... so no two threads ever beat as the same host, and
/// together they cover every name. The script's argument (`wrk ... -s SCRIPT URL -- START`)
/// makes each thread begin START names into its own cycle, so consecutive passes can carry on
/// where the last one stopped instead of beating the same first hosts again. Each beat names
/// its host (`Fledge-Host`) and carries its secret, line N+1 of `secrets` being host N's.
/// With `first`, the names are hosts first..<first + hosts of a fleet of `fleet` (one of two
/// instances' halves).
struct HeartbeatScript {
    /// Distinct hostnames; at least `threads`.
    let hosts: Int
    let threads: Int
    /// The number of the first host beaten.
    var first = 0
    /// The whole fleet's size, which sets the names' digits.
    var fleet: Int? = nil
    /// File of the hosts' secrets, one per line, in host order.
    var secrets: FilePath? = nil

    /// Digits of the number in a hostname (`host-00042`): at least 5.
    var digits: Int { max(5, String(max((fleet ?? hosts) - 1, 0)).count) }

    /// Host number `index`'s name.
    func name(host index: Int) -> String {
        let number = String(index)
        return "host-" + String(repeating: "0", count: max(0, digits - number.count)) + number
    }

    /// The body sent for host number `index`.
    func body(host index: Int) -> String {
        #"{"hostname":"\#(name(host: index))","ip":"127.0.0.1","version":"1.0.0","labels":{"idc":"a"},"state":"idle","held":[]}"#
    }

    /// The script's text. `setup` runs in wrk's main Lua state once per thread and numbers the
    /// threads; each thread's own state then keeps its own counter.
    var text: String {
        """
        -- fledge-bench hbs: one JSON heartbeat per request, \(hosts) distinct hostnames from number \(first) over \(threads) thread(s).
        local hosts = \(hosts)
        local first = \(first)
        local stride = \(threads)
        local threads_started = 0

        function setup(thread)
          thread:set("thread_index", threads_started)
          threads_started = threads_started + 1
        end

        local counter = 0
        local secrets = {}

        function init(args)
          local start = tonumber(args[1]) or 0
          local cycle = math.floor((hosts - thread_index - 1) / stride) + 1
          counter = thread_index + (start % cycle) * stride
          \(secrets.map { "for line in io.lines(\"\($0.string)\") do secrets[#secrets + 1] = line end" } ?? "")
        end

        wrk.method = "POST"

        function request()
          local name = string.format("host-%0\(digits)d", first + counter)
          local body = '{"hostname":"' .. name .. '","ip":"127.0.0.1","version":"1.0.0","labels":{"idc":"a"},"state":"idle","held":[]}'
          local headers = {["Content-Type"] = "application/json"}
          if secrets[first + counter + 1] then
            headers["Fledge-Host"] = name
            headers["Authorization"] = "Bearer " .. secrets[first + counter + 1]
          end
          counter = counter + stride
          if counter >= hosts then counter = thread_index end
          return wrk.format(nil, nil, headers, body)
        end
        """
    }

    /// Writes the script to `path`.
    func write(to path: FilePath) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path.string)) } catch {
            throw BenchError.io("cannot write the wrk script \(path): \(error)")
        }
    }
}
