/// Lower bounds on the time to give every host a release (Kumar and Ross, 2006), in seconds,
/// for rates in bytes per second.
public enum KumarRoss {
    /// `max(F/u_s, F/d_min, N*F/(u_s + sum u_i))`: no schedule of any swarm does better.
    /// `hostUploads` is every host's upload, 0 for hosts that do not serve.
    public static func minimumTime(hosts: Int, bytes: Double, sourceUpload: Double, hostDownload: Double, hostUploads: Double) -> Double {
        guard hosts > 0 else { return 0 }
        return max(bytes / sourceUpload, bytes / hostDownload, Double(hosts) * bytes / (sourceUpload + hostUploads))
    }

    /// `max(N*F/u_s, F/d_min)`: falcon's way, every byte from the sources.
    public static func originOnlyTime(hosts: Int, bytes: Double, sourceUpload: Double, hostDownload: Double) -> Double {
        guard hosts > 0 else { return 0 }
        return max(Double(hosts) * bytes / sourceUpload, bytes / hostDownload)
    }
}
