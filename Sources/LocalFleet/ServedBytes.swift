/// Bytes a range server (`fledge-seeder serve`, an agent's peer server) answered GETs with, as
/// its request log says: each request is logged once, when it is answered, with `bytes=N`
/// (the body it sends). The count is the server's own, not what clients report; a transfer
/// cut short still counts whole.
enum ServedBytes {
    /// The sum of `bytes=N` over the GET lines of `log`.
    static func total(inLog log: String) -> Int64 {
        var total: Int64 = 0
        for line in log.split(separator: "\n", omittingEmptySubsequences: true) where line.contains(" GET /") {
            // `range=bytes=A-B` is another field: only a field that starts with `bytes=` counts.
            for field in line.split(separator: " ") where field.hasPrefix("bytes=") {
                if let count = Int64(field.dropFirst(6)) { total += count }
            }
        }
        return total
    }
}
