import FleetSimulation
import Foundation

/// Hosts confirmed over time, one line per run, on a logarithmic time axis (seconds to hours
/// on one plot), with each mode's T_min and the origin-only time as dashed marks. Plain SVG,
/// written by hand.
struct SimulationPlot {
    let report: SimulationReport

    private static let colors = ["origin": "#d62728", "cdn-batches": "#ff7f0e", "peer-file": "#2ca02c", "peer-piece": "#1f77b4"]
    private let width = 900.0, height = 520.0
    private let left = 70.0, right = 190.0, top = 40.0, bottom = 60.0

    var svg: String {
        let runs = report.results.map { ($0.mode.rawValue, $0) }
            + (report.fullRollout.map { [("full rollout", $0)] } ?? [])
        let hosts = Double(report.parameters.hosts)
        let times = runs.flatMap { $0.1.confirmTimes } + [report.parameters.originOnlyTime]
            + report.results.map { report.parameters.minimumTime($0.mode) }
        let lowest = max(0.1, (times.filter { $0 > 0 }.min() ?? 1) / 2)
        let xMin = pow10(floor(log10(lowest))), xMax = pow10(ceil(log10(max(times.max() ?? 10, xMin * 10))))
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ seconds: Double) -> Double { left + plotWidth * (log10(max(seconds, xMin)) - log10(xMin)) / (log10(xMax) - log10(xMin)) }
        func y(_ done: Double) -> Double { top + plotHeight * (1 - done / hosts) }

        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="14">\(escape(title))</text>

            """
        // Axes and grid: decades on x, quarters on y.
        var decade = xMin
        while decade <= xMax * 1.0001 {
            let px = x(decade)
            out += line(px, top, px, top + plotHeight, stroke: "#ddd")
            out += text(px, top + plotHeight + 18, label(decade), anchor: "middle")
            decade *= 10
        }
        for quarter in 0...4 {
            let done = hosts * Double(quarter) / 4
            out += line(left, y(done), left + plotWidth, y(done), stroke: "#ddd")
            out += text(left - 6, y(done) + 4, "\(Int(done))", anchor: "end")
        }
        out += line(left, top + plotHeight, left + plotWidth, top + plotHeight, stroke: "#333")
        out += line(left, top, left, top + plotHeight, stroke: "#333")
        out += text(left + plotWidth / 2, height - 18, "virtual time since the rollout started (log scale)", anchor: "middle")
        out += "<text x=\"18\" y=\"\(top + plotHeight / 2)\" transform=\"rotate(-90 18 \(top + plotHeight / 2))\" text-anchor=\"middle\">hosts confirmed</text>\n"

        // T_min of each mode, origin-only.
        for result in report.results {
            let color = Self.colors[result.mode.rawValue] ?? "#555"
            let px = x(report.parameters.minimumTime(result.mode))
            out += line(px, top, px, top + plotHeight, stroke: color, dash: "2,4")
        }
        let origin = x(report.parameters.originOnlyTime)
        out += line(origin, top, origin, top + plotHeight, stroke: "#888", dash: "6,4")
        out += text(origin - 4, top + 12, "origin-only", anchor: "end", fill: "#888")

        // One step line per run.
        var legend = 0.0
        for (label, result) in runs {
            let color = Self.colors[label] ?? "#9467bd"
            let points = SimulationReport.timeline(result.confirmTimes, points: 600)
            var path = ""
            var previous = 0.0
            for point in points where point[0] > 0 || point[1] > 0 {
                path += path.isEmpty ? "M\(f(x(point[0]))),\(f(y(previous)))" : ""
                path += " H\(f(x(point[0]))) V\(f(y(point[1])))"
                previous = point[1]
            }
            if !path.isEmpty {
                let dash = label == "full rollout" ? " stroke-dasharray=\"8,3\"" : ""
                out += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
            }
            let ly = top + 10 + legend * 20
            out += line(left + plotWidth + 12, ly, left + plotWidth + 36, ly, stroke: color, width: 2)
            out += text(left + plotWidth + 42, ly + 4, label, anchor: "start")
            legend += 1
        }
        out += text(left + plotWidth + 12, top + 20 + legend * 20, "dotted: T_min per mode", anchor: "start", fill: "#555")
        return out + "</svg>\n"
    }

    private var title: String {
        let p = report.parameters
        return "fledge-bench simulate: N = \(p.hosts), F = \(SimulationReport.size(p.releaseBytes)), hosts \(Format.fixed(p.hostDownload * 8 / 1e6, 1)) Mbit/s, CDNs of \(Format.fixed(p.cdnUpload * 8 / 1e6, 0)) Mbit/s"
    }

    private func label(_ seconds: Double) -> String {
        if seconds >= 36000 { return "\(Int(seconds)) s (\(Int((seconds / 3600).rounded())) h)" }
        if seconds >= 600 { return "\(Int(seconds)) s (\(Int((seconds / 60).rounded())) min)" }
        return seconds >= 1 ? "\(Int(seconds)) s" : "\(Format.fixed(seconds, 1)) s"
    }

    private func f(_ value: Double) -> String { Format.fixed(value, 1) }

    private func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dash: String? = nil) -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(width)\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>\n"
    }

    private func text(_ x: Double, _ y: Double, _ content: String, anchor: String, fill: String = "#222") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\" fill=\"\(fill)\">\(escape(content))</text>\n"
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    private func pow10(_ exponent: Double) -> Double { Foundation.pow(10, exponent) }
}
