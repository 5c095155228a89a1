// The Prometheus metrics endpoint (docs/design.md §8): the text exposition format and the HTTP
// handler serving it at /metrics. What the figures are is the router's business (its
// metricsText()); this renders and serves them.
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

/// GET /metrics; anything else is 404. One request per connection.
public final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundOut = HTTPServerResponsePart

    private let loop: EventLoop
    private let text: @Sendable () -> String
    private var head: HTTPRequestHead?

    /// `text` renders the exposition on `loop`, where the state it reads lives.
    public init(loop: EventLoop, text: @escaping @Sendable () -> String) {
        self.loop = loop
        self.text = text
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            guard head.method == .GET, ControlRequest(method: head.method, uri: head.uri, body: []).path == "/metrics" else {
                send(context: context, status: .notFound, type: "text/plain; charset=utf-8", body: "weft serves /metrics only\n")
                return
            }
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            loop.submit(text).hop(to: context.eventLoop).whenComplete { result in
                switch result {
                case .success(let text): self.send(context: ctx.value, status: .ok, type: "text/plain; version=0.0.4; charset=utf-8", body: text)
                case .failure(let error): self.send(context: ctx.value, status: .internalServerError, type: "text/plain; charset=utf-8", body: "\(error)\n")
                }
            }
        }
    }

    private func send(context: ChannelHandlerContext, status: HTTPResponseStatus, type: String, body: String) {
        let bytes = Array(body.utf8)
        let headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(bytes.count)"), ("Connection", "close")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
