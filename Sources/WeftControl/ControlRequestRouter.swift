// The control API's one request router: a table of method + path → handler, with one URI split,
// one JSON body decoder and one error shape (`{"error": "..."}`). The HTTP server
// (ControlServer) hands it every request; the endpoints themselves are in ControlEndpoints.
import Foundation
import NIOCore
import NIOHTTP1

/// One request as the handlers see it: the path without its query, and the raw body.
public struct ControlRequest: Sendable {
    public var method: HTTPMethod
    public var path: String
    public var body: [UInt8]

    public init(method: HTTPMethod, uri: String, body: [UInt8]) {
        self.method = method
        self.path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        self.body = body
    }

    /// Decodes the JSON body; an empty body reads as `{}` so optional-only requests may omit
    /// it. Fails with 400 and the shape the endpoint expects.
    public func decode<T: Decodable>(_ type: T.Type, shape: String) throws -> T {
        guard let value = try? JSONDecoder().decode(type, from: Data(body.isEmpty ? Array("{}".utf8) : body)) else {
            throw ControlAPIError(.badRequest, "expected \(shape)")
        }
        return value
    }
}

/// A status and a JSON body.
public struct ControlReply: Sendable {
    public var status: HTTPResponseStatus
    public var body: [UInt8]

    public init(status: HTTPResponseStatus, body: [UInt8]) {
        self.status = status
        self.body = body
    }

    public static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> ControlReply {
        ControlReply(status: status, body: ControlJSON.encode(value))
    }

    public static func error(_ status: HTTPResponseStatus, _ message: String) -> ControlReply {
        json(ControlError(error: message), status: status)
    }
}

/// A refusal with its HTTP status; handlers throw it (or fail their future with it).
public struct ControlAPIError: Error, CustomStringConvertible, Sendable {
    public var status: HTTPResponseStatus
    public var description: String

    public init(_ status: HTTPResponseStatus, _ description: String) {
        self.status = status
        self.description = description
    }
}

/// What a handler returns: an answer now, or one when the mesh has answered (key operations).
public enum ControlAnswer: Sendable {
    case reply(ControlReply)
    case pending(EventLoopFuture<ControlReply>)
}

public enum ControlJSON {
    /// Pretty, sorted and newline-terminated: `weft … --json` prints bodies as they come.
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [UInt8(ascii: "\n")]
    }
}

public struct ControlRequestRouter: Sendable {
    public typealias Handler = @Sendable (ControlRequest) throws -> ControlAnswer

    struct Route: Sendable {
        var method: HTTPMethod
        var path: String
        var handler: Handler
    }

    private var routes: [Route] = []

    public init() {}

    public mutating func add(_ method: HTTPMethod, _ path: String, _ handler: @escaping Handler) {
        precondition(!routes.contains { $0.method == method && $0.path == path }, "\(method) \(path) routed twice")
        routes.append(Route(method: method, path: path, handler: handler))
    }

    /// Every route, for documentation and tests.
    public var endpoints: [(method: HTTPMethod, path: String)] { routes.map { ($0.method, $0.path) } }

    /// Runs the handler of `request`: 404 for an unknown path, 405 for a known path with another
    /// method, the thrown status for a ControlAPIError, 400 for any other thrown error (they
    /// describe what was wrong with the request, e.g. a CIDR that does not parse).
    public func answer(_ request: ControlRequest) -> ControlAnswer {
        let onPath = routes.filter { $0.path == request.path }
        guard !onPath.isEmpty else { return .reply(.error(.notFound, "no such endpoint: \(request.method) \(request.path)")) }
        guard let route = onPath.first(where: { $0.method == request.method }) else {
            return .reply(.error(.methodNotAllowed, "\(request.method) is not allowed on \(request.path)"))
        }
        do {
            return try route.handler(request)
        } catch let error as ControlAPIError {
            return .reply(.error(error.status, error.description))
        } catch {
            return .reply(.error(.badRequest, "\(error)"))
        }
    }

    /// The answer as a future on `loop`; a pending answer that fails with a ControlAPIError
    /// gets its status, any other failure 500.
    public func respond(to request: ControlRequest, on loop: EventLoop) -> EventLoopFuture<ControlReply> {
        switch answer(request) {
        case .reply(let reply):
            return loop.makeSucceededFuture(reply)
        case .pending(let future):
            return future.flatMapErrorThrowing { error in
                if let error = error as? ControlAPIError { return .error(error.status, error.description) }
                return .error(.internalServerError, "\(error)")
            }
        }
    }
}
