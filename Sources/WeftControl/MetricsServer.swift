// The metrics listener (docs/design.md §8): the Prometheus text exposition format, and the HTTP
// handler serving /metrics, the mesh page (/, MeshPage) and its data (/topology.json). What the
// figures are is the router's business (its metricsText(), meshPageData()); this renders and
// serves them.
import NIOCore
import NIOHTTP1

/// Writes the Prometheus text exposition format, version 0.0.4.
public struct PrometheusText {
    public enum Kind: String, Sendable { case counter, gauge }
    public private(set) var text = ""

    public init() {}

    public mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [(labels: [(String, String)], value: UInt64)]) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
        for (labels, value) in samples {
            let rendered = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
            text += rendered.isEmpty ? "\(name) \(value)\n" : "\(name){\(rendered)} \(value)\n"
        }
    }

    public static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// One document the metrics listener serves: its media type, and its body rendered on the
/// router's loop (where the state it reads lives).
public struct MetricsEndpoint: Sendable {
    public let contentType: String
    public let body: @Sendable () -> [UInt8]

    public init(contentType: String, body: @escaping @Sendable () -> [UInt8]) {
        self.contentType = contentType
        self.body = body
    }
}

/// The metrics listener's HTTP handler: GET (or HEAD) of one of `endpoints`' paths. An unknown
/// path is 404, another method 405, a request body over ControlHandler.maxBody 413 (headers over
/// 80 KiB are refused with 400 by NIO's decoder). One request per connection.
public final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let loop: EventLoop
    private let endpoints: [String: MetricsEndpoint]
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    /// Set once a response is under way: nothing more of this request is read.
    private var answered = false

    /// `endpoints` by path ("/metrics"); their bodies are rendered on `loop`.
    public init(loop: EventLoop, endpoints: [String: MetricsEndpoint]) {
        self.loop = loop
        self.endpoints = endpoints
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
        case .body(let chunk):
            bodyBytes += chunk.readableBytes
            if bodyBytes > ControlHandler.maxBody {
                send(context: context, status: .payloadTooLarge, body: "request body over \(ControlHandler.maxBody / 1024) KiB; this listener serves GET only\n")
            }
        case .end:
            guard let head else { return }
            let path = ControlRequest(method: head.method, uri: head.uri, body: []).path
            guard let endpoint = endpoints[path] else {
                let paths = endpoints.keys.sorted().joined(separator: ", ")
                send(context: context, status: .notFound, body: "no such page: \(path); weft serves \(paths)\n")
                return
            }
            guard head.method == .GET || head.method == .HEAD else {
                send(context: context, status: .methodNotAllowed, extra: [("Allow", "GET, HEAD")], body: "\(path) answers GET only\n")
                return
            }
            answered = true
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            let withBody = head.method == .GET
            loop.submit(endpoint.body).hop(to: context.eventLoop).whenComplete { result in
                switch result {
                case .success(let bytes): self.send(context: ctx.value, status: .ok, type: endpoint.contentType, bytes: bytes, withBody: withBody)
                case .failure(let error): self.send(context: ctx.value, status: .internalServerError, body: "\(error)\n")
                }
            }
        }
    }

    private func send(context: ChannelHandlerContext, status: HTTPResponseStatus, extra: [(String, String)] = [], body: String) {
        send(context: context, status: status, type: "text/plain; charset=utf-8", extra: extra, bytes: Array(body.utf8), withBody: true)
    }

    private func send(context: ChannelHandlerContext, status: HTTPResponseStatus, type: String, extra: [(String, String)] = [],
                      bytes: [UInt8], withBody: Bool) {
        answered = true
        let headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(bytes.count)"), ("Cache-Control", "no-store"),
                                   ("Connection", "close")] + extra)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if withBody {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
