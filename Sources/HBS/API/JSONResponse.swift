#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Hummingbird

/// JSON bodies the way each API shapes them: falcon's `{"msg":..,"data":..}` envelope for the
/// falcon routes, plain objects and `{"error":..}` for the rest.
enum JSONResponse {
    /// The encoder of every JSON answer (and of the event stream's data): sorted keys, slashes
    /// left alone.
    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func encode(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? makeEncoder().encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `{"error": "...", "field": "..."}` with a 4xx/5xx status.
    static func error(_ status: HTTPResponse.Status, _ message: String, field: String? = nil) -> Response {
        struct Body: Encodable { var error: String; var field: String? }
        return encode(Body(error: message, field: field), status: status)
    }

    /// falcon's success envelope.
    static func falcon(_ data: some Encodable) -> Response {
        encode(FalconEnvelope(data: data))
    }

    /// falcon's error envelope: `{"msg":"<reason>","data":null}`.
    static func falconError(_ status: HTTPResponse.Status, _ reason: String) -> Response {
        struct Envelope: Encodable {
            var msg: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(msg, forKey: .msg)
                try container.encodeNil(forKey: .data)
            }
            enum Keys: CodingKey { case msg, data }
        }
        return encode(Envelope(msg: reason), status: status)
    }

    /// Decodes a request body, or says why not.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: HBSRequestContext) async -> Result<T, DecodeFailure> {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: context.maxUploadSize) } catch {
            return .failure(DecodeFailure(message: "request body over \(context.maxUploadSize) bytes", status: .contentTooLarge))
        }
        do {
            return .success(try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView)))
        } catch let error as DecodingError {
            return .failure(DecodeFailure(message: DecodeFailure.describe(error), status: .badRequest))
        } catch {
            return .failure(DecodeFailure(message: "bad json: \(error)", status: .badRequest))
        }
    }
}

/// falcon's `{"msg":"success","data":...}`.
private struct FalconEnvelope<T: Encodable>: Encodable {
    var msg = "success"
    var data: T
}

/// Why a body could not be read, for the 4xx answer.
struct DecodeFailure: Error {
    var message: String
    var status: HTTPResponse.Status

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }.joined().trimmingPrefix(".").description
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing field '\(path(context.codingPath + [key]))'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field '\(path(context.codingPath))' has the wrong type"
        case .dataCorrupted(let context) where context.codingPath.isEmpty: return "bad json: \(context.debugDescription)"
        case .dataCorrupted(let context): return "field '\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default: return "bad json"
        }
    }
}
