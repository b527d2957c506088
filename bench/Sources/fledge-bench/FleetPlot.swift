import Foundation

/// The SVG of `fledge-bench fleet`: hosts confirmed over time, one step line per mode, each
/// mode's T_min as a dashed line of its colour. Written by hand: no dependencies.
enum FleetPlot {
    static let colours: [FleetMode: String] = [
        .origin: "#d62728", .cdnBatches: "#ff7f0e", .peerFile: "#1f77b4", .peerPiece: "#2ca02c",
    ]

    static func svg(title: String, hosts: Int, results: [FleetModeResult]) -> String {
        let (width, height) = (860.0, 500.0)
        let (left, right, top, bottom) = (60.0, 200.0, 40.0, 50.0)
        let plotW = width - left - right, plotH = height - top - bottom
        let longest = results.flatMap { [$0.curve.last?.seconds ?? 0, $0.model.minimumSeconds] }.max() ?? 1
        let step = niceStep(longest * 1.05 / 8)
        let xMax = (longest * 1.05 / step).rounded(.up) * step
        func x(_ seconds: Double) -> Double { left + seconds / xMax * plotW }
        func y(_ count: Int) -> Double { top + plotH - Double(count) / Double(max(hosts, 1)) * plotH }
        func f(_ value: Double) -> String { String(format: "%.1f", value) }

        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(left))\" y=\"22\" font-size=\"14\">\(escape(title))</text>",
        ]
        // Axes, grid and ticks.
        var tick = 0.0
        while tick <= xMax + 1e-9 {
            out.append("<line x1=\"\(f(x(tick)))\" y1=\"\(f(top))\" x2=\"\(f(x(tick)))\" y2=\"\(f(top + plotH))\" stroke=\"#eee\"/>")
            out.append("<text x=\"\(f(x(tick)))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(tick == tick.rounded() ? "\(Int(tick))" : f(tick))</text>")
            tick += step
        }
        let yStep = max(1, Int(niceStep(Double(hosts) / 8)))
        for count in stride(from: 0, through: hosts, by: yStep) {
            out.append("<line x1=\"\(f(left))\" y1=\"\(f(y(count)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y(count)))\" stroke=\"#eee\"/>")
            out.append("<text x=\"\(f(left - 6))\" y=\"\(f(y(count) + 4))\" text-anchor=\"end\">\(count)</text>")
        }
        out.append("<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#444\"/>")
        out.append("<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">seconds since the rollout's POST</text>")
        out.append("<text transform=\"translate(16 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">hosts confirmed on the new version</text>")
        // Curves, T_min lines, legend.
        for (index, result) in results.enumerated() {
            let colour = colours[result.mode] ?? "#000"
            var points: [String] = []
            var previous = 0
            for point in result.curve {
                points.append("\(f(x(point.seconds))),\(f(y(previous)))")
                points.append("\(f(x(point.seconds))),\(f(y(point.done)))")
                previous = point.done
            }
            out.append("<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>")
            let tMin = result.model.minimumSeconds
            out.append("<line x1=\"\(f(x(tMin)))\" y1=\"\(f(top))\" x2=\"\(f(x(tMin)))\" y2=\"\(f(top + plotH))\" stroke=\"\(colour)\" stroke-dasharray=\"5,4\" opacity=\"0.7\"/>")
            let legendY = top + 10 + Double(index) * 36
            out.append("<line x1=\"\(f(width - right + 14))\" y1=\"\(f(legendY))\" x2=\"\(f(width - right + 40))\" y2=\"\(f(legendY))\" stroke=\"\(colour)\" stroke-width=\"2\"/>")
            out.append("<text x=\"\(f(width - right + 46))\" y=\"\(f(legendY + 4))\">\(result.mode.rawValue)\(result.failure == nil ? "" : " (failed)")</text>")
            let detail = "t100 " + (result.t100.map { f($0) + " s" } ?? "-") + ", T_min " + f(tMin) + " s"
            out.append("<text x=\"\(f(width - right + 46))\" y=\"\(f(legendY + 18))\" font-size=\"10\" fill=\"#555\">\(detail)</text>")
        }
        out.append("<text x=\"\(f(width - right + 14))\" y=\"\(f(top + 20 + Double(results.count) * 36))\" font-size=\"10\" fill=\"#555\">dashed: T_min (Kumar-Ross)</text>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let power = pow(10, floor(log10(raw)))
        for factor in [1.0, 2, 5, 10] where factor * power >= raw { return factor * power }
        return 10 * power
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
