/// Pending hosts whose beats the engine would answer with nothing for now, grouped by batch
/// and by the phase of their beat within the interval, so that when something changes the
/// host that beats next can be found without touching the others.
///
/// Every parked host beats at `anchor + k * interval`; its phase is `anchor mod interval`,
/// kept in one of `bucketCount` buckets per batch.
struct PhaseParking {
    let interval: Double
    let bucketCount: Int
    /// `lists[batch][bucket]`: the hosts parked there.
    private var lists: [[[Int32]]] = []
    private var phase: [Double]
    private var batchOf: [Int32]
    private var bucketOf: [Int32]
    private var slotOf: [Int32]
    private(set) var parked: [Int] = []

    init(hosts: Int, interval: Double, bucketCount: Int = 256) {
        self.interval = interval
        self.bucketCount = bucketCount
        phase = [Double](repeating: 0, count: hosts)
        batchOf = [Int32](repeating: -1, count: hosts)
        bucketOf = batchOf
        slotOf = batchOf
    }

    func isParked(_ host: Int) -> Bool { batchOf[host] >= 0 }

    /// Batches with hosts parked.
    var batches: [Int] { parked.indices.filter { parked[$0] > 0 } }

    mutating func park(_ host: Int, batch: Int, anchor: Double) {
        precondition(!isParked(host))
        while lists.count <= batch {
            lists.append([[Int32]](repeating: [], count: bucketCount))
            parked.append(0)
        }
        let offset = anchor.truncatingRemainder(dividingBy: interval)
        let phase = offset < 0 ? offset + interval : offset
        let bucket = min(bucketCount - 1, Int(phase / interval * Double(bucketCount)))
        self.phase[host] = phase
        batchOf[host] = Int32(batch)
        bucketOf[host] = Int32(bucket)
        slotOf[host] = Int32(lists[batch][bucket].count)
        lists[batch][bucket].append(Int32(host))
        parked[batch] += 1
    }

    mutating func remove(_ host: Int) {
        let batch = Int(batchOf[host])
        guard batch >= 0 else { return }
        let bucket = Int(bucketOf[host]), slot = Int(slotOf[host])
        let last = lists[batch][bucket].removeLast()
        if Int(last) != host {
            lists[batch][bucket][slot] = last
            slotOf[Int(last)] = Int32(slot)
        }
        batchOf[host] = -1
        parked[batch] -= 1
    }

    /// The host of `batch` whose next beat comes first after `time`, and when.
    func successor(in batch: Int, after time: Double) -> (host: Int, at: Double)? {
        guard batch < parked.count, parked[batch] > 0 else { return nil }
        let offset = time.truncatingRemainder(dividingBy: interval)
        let now = offset < 0 ? offset + interval : offset
        let first = min(bucketCount - 1, Int(now / interval * Double(bucketCount)))
        var best: (host: Int, wait: Double)?
        // The bucket `time` falls in, then the first later one with hosts (cyclically): hosts
        // of the first bucket that beat before `time` come round last.
        for step in 0...bucketCount {
            let bucket = (first + step) % bucketCount
            for host in lists[batch][bucket] {
                var wait = phase[Int(host)] - now
                if wait <= 0 { wait += interval }
                if best == nil || wait < best!.wait { best = (Int(host), wait) }
            }
            if step > 0 && !lists[batch][bucket].isEmpty { break }
        }
        return best.map { ($0.host, time + $0.wait) }
    }
}
