import Swarm
import Wire

/// How a peer says which pieces of a release it holds verified, on its range server:
///
/// - `GET /_fledge/pieces/NAME/VERSION`: the map now, one ASCII `1`/`0` per piece (files in
///   manifest order), empty while it holds none. A liveness check, and for people with curl.
/// - `GET /_fledge/pieces/NAME/VERSION?watch=1`: a Server-Sent Event stream, kept open: a
///   `map` snapshot first, then a `have` event for each piece the moment it is verified, and
///   `complete` once the peer holds the whole release (the stream then ends). Event ids are
///   `EPOCH.COUNT`; a reader reconnecting with `Last-Event-ID` gets only what it missed, if the
///   peer still runs the same assembly. A `: ping` comment every few seconds shows the stream
///   is alive.
///
/// Four path components, so a map can never be a release file (`NAME/VERSION/FILE`). Origins
/// (a directory, nginx) answer 404: they hold every piece.
public enum PieceAvailability {
    /// What a stream says.
    public enum Update: Sendable, Equatable {
        /// Every piece it holds now.
        case snapshot(PieceSet)
        /// Pieces it verified since (indices over the whole release).
        case have([Int])
        /// It holds the whole release; nothing more will come.
        case complete
    }

    public static func path(name: String, version: String) -> String { "/_fledge/pieces/\(name)/\(version)" }
    public static func watchPath(name: String, version: String) -> String { path(name: name, version: version) + "?watch=1" }

    /// The header a reader names its own range server's port with: the serving peer may then
    /// fetch from it too, at the address the connection came from (never one the header says).
    public static let peerPortHeader = "Fledge-Peer-Port"

    /// Seconds between two keep-alive comments on an idle stream; a reader that hears
    /// nothing for three times this long counts the stream dead.
    public static let keepAliveSeconds = 5

    /// The release that request path components ask about, if they ask for availability.
    static func release(in components: [String]) -> (name: String, version: String)? {
        guard components.count == 4, components[0] == "_fledge", components[1] == "pieces" else { return nil }
        return (components[2], components[3])
    }

    /// Whether a request target asks for the stream (`?watch`).
    static func isWatch(_ target: String) -> Bool {
        guard let query = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return false }
        return query.split(separator: "&").contains { $0 == "watch" || $0.hasPrefix("watch=") }
    }

    static func event(_ update: Update, id: String) -> ServerSentEvent {
        switch update {
        case .snapshot(let set): ServerSentEvent(event: "map", id: id, data: String(decoding: set.text.dropLast(), as: UTF8.self))
        case .have(let pieces): ServerSentEvent(event: "have", id: id, data: pieces.map(String.init).joined(separator: ","))
        case .complete: ServerSentEvent(event: "complete", id: id, data: "")
        }
    }

    /// What an event says of a release of `pieceCount` pieces; nil if it is not a well-formed
    /// availability event (the reader then distrusts the peer).
    public static func update(from event: ServerSentEvent, pieceCount: Int) -> Update? {
        switch event.event {
        case "map":
            return PieceSet(text: Array(event.data.utf8), capacity: pieceCount).map(Update.snapshot)
        case "have":
            var pieces: [Int] = []
            for part in event.data.split(separator: ",") {
                guard let piece = Int(part), piece >= 0, piece < pieceCount else { return nil }
                pieces.append(piece)
            }
            return .have(pieces)
        case "complete":
            return .complete
        default:
            return nil
        }
    }
}
