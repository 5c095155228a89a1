// The control API's HTTP server: HTTP/1.1 with JSON bodies on a Unix socket (docs/design.md §8).
// One request per connection; each is answered by the ControlRequestRouter on the router's event
// loop, where the state it reads and changes lives.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why the control socket could not be served; the message says what to do.
public struct ControlSocketError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

public final class ControlServer: @unchecked Sendable {
    let channel: Channel
    let path: String

    private init(channel: Channel, path: String) {
        self.channel = channel
        self.path = path
    }

    /// Answers requests with `api` on `loop`. Throws ControlSocketError when the socket cannot be
    /// created or another router answers on it.
    /// The socket's directory must exist (`weft launch` makes only the default one).
    public static func start(path: String, group: EventLoopGroup, loop: EventLoop, api: ControlRequestRouter) throws -> ControlServer {
        try refuseIfAnswering(path: path)
        if FileManager.default.fileExists(atPath: path) { unlink(path) }  // a stale socket from a crash
        let bootstrap = ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ControlHandler(loop: loop, api: api))
                    }
                }
            }
        do {
            let channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
            chmod(path, 0o600)
            return ControlServer(channel: channel, path: path)
        } catch {
            throw ControlSocketError("cannot create control socket \(path): \(error); pass --socket to a writable path")
        }
    }

    /// Throws ControlSocketError when a live router answers on `path`; a stale socket left by a
    /// crash, or none, passes.
    public static func refuseIfAnswering(path: String) throws {
        guard FileManager.default.fileExists(atPath: path),
              (try? ControlClient(socketPath: path, timeoutSeconds: 1).request(method: "GET", path: "/v1/status")) != nil else { return }
        throw ControlSocketError("a router is already running on control socket \(path); stop it first (weft stop), or pass --socket")
    }

    public func close() {
        channel.close(promise: nil)
        unlink(path)
    }
}

final class ControlHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let loop: EventLoop
    private let api: ControlRequestRouter
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    static let maxBody = 64 * 1024

    init(loop: EventLoop, api: ControlRequestRouter) {
        self.loop = loop
        self.api = api
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
        case .body(var chunk):
            guard body.count + chunk.readableBytes <= Self.maxBody else {
                respond(context: context, .error(.payloadTooLarge, "request body over 64 KiB"))
                return
            }
            body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            guard let head else { return }
            let request = ControlRequest(method: head.method, uri: head.uri, body: body)
            let response = loop.flatSubmit { [api, loop] in api.respond(to: request, on: loop) }
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            response.hop(to: context.eventLoop).whenComplete { result in
                switch result {
                case .success(let reply): self.respond(context: ctx.value, reply)
                case .failure(let error): self.respond(context: ctx.value, .error(.internalServerError, "\(error)"))
                }
            }
        }
    }

    private func respond(context: ChannelHandlerContext, _ reply: ControlReply) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(reply.body.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: reply.body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
