/// A plain-text table for people: a title, aligned columns, and notes underneath.
struct Table {
    enum Alignment { case left, right }

    struct Column {
        var header: String
        var alignment: Alignment
    }

    var title: String
    var columns: [Column]
    private(set) var rows: [[String]] = []
    var notes: [String] = []

    init(_ title: String, columns: [(String, Alignment)]) {
        self.title = title
        self.columns = columns.map { Column(header: $0.0, alignment: $0.1) }
    }

    mutating func add(_ cells: [String]) {
        precondition(cells.count == columns.count, "a row has \(cells.count) cells for \(columns.count) columns")
        rows.append(cells)
    }

    mutating func note(_ text: String) { notes.append(text) }

    var rendered: String {
        let widths = columns.indices.map { index in
            ([columns[index].header] + rows.map { $0[index] }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.indices.map { index in
                let padding = String(repeating: " ", count: widths[index] - cells[index].count)
                return columns[index].alignment == .left ? cells[index] + padding : padding + cells[index]
            }.joined(separator: "  ").trimmingTrailingSpaces
        }
        var lines = [title, line(columns.map(\.header)), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        lines += rows.map(line)
        lines += notes.map { "  * " + $0 }
        return lines.joined(separator: "\n")
    }

    func print() { Swift.print(rendered + "\n") }
}

extension String {
    fileprivate var trimmingTrailingSpaces: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
