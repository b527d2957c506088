/// One piece of one file of a release: the unit that is fetched, verified and served.
public struct PieceRef: Hashable, Sendable, CustomStringConvertible {
    /// Index into `Manifest.files`.
    public let file: Int
    /// Index into that file's `pieces`.
    public let index: Int

    public init(file: Int, index: Int) {
        self.file = file
        self.index = index
    }

    public var description: String { "piece \(index) of file \(file)" }
}
