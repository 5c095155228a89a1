// The control API: HTTP/1.1 with JSON bodies on a Unix socket (docs/design.md §8). One request per
// connection; every handler hops onto the router's event loop to read or change state.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

final class ControlServer: @unchecked Sendable {
    let channel: Channel
    let path: String

    private init(channel: Channel, path: String) {
        self.channel = channel
        self.path = path
    }

    static func start(path: String, group: EventLoopGroup, router: Router) throws -> ControlServer {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        if FileManager.default.fileExists(atPath: path) {
            // A live router answers on it; a stale socket from a crash is replaced.
            if (try? ControlClient(socketPath: path, timeoutSeconds: 1).request(method: "GET", path: "/v1/status")) != nil {
                throw ConfigError("another router is already running on control socket \(path); stop it or pass --socket")
            }
            unlink(path)
        }
        let bootstrap = ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ControlHandler(router: router))
                    }
                }
            }
        do {
            let channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
            chmod(path, 0o600)
            return ControlServer(channel: channel, path: path)
        } catch {
            throw ConfigError("cannot create control socket \(path): \(error); pass --socket to a writable path")
        }
    }

    func close() {
        channel.close(promise: nil)
        unlink(path)
    }
}

final class ControlHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: Router
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    static let maxBody = 64 * 1024

    init(router: Router) { self.router = router }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
        case .body(var chunk):
            guard body.count + chunk.readableBytes <= Self.maxBody else {
                respond(context: context, status: .payloadTooLarge, json: Self.error("request body over 64 KiB"))
                return
            }
            body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            guard let head else { return }
            let response = router.loop.flatSubmit { [router, body] in
                // Key operations answer when the mesh has answered; the rest at once.
                KeysAPI.handle(router: router, method: head.method, uri: head.uri, body: body)
                    ?? router.loop.makeSucceededFuture(Self.handle(router: router, method: head.method, uri: head.uri, body: body))
            }
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            response.hop(to: context.eventLoop).whenComplete { result in
                switch result {
                case .success(let (status, json)): self.respond(context: ctx.value, status: status, json: json)
                case .failure(let error): self.respond(context: ctx.value, status: .internalServerError, json: Self.error("\(error)"))
                }
            }
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, json: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(json.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: json)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    static func error(_ message: String) -> [UInt8] { encode(ControlError(error: message)) }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [UInt8(ascii: "\n")]
    }

    /// Runs on the router's loop.
    static func handle(router: Router, method: HTTPMethod, uri: String, body: [UInt8]) -> (HTTPResponseStatus, [UInt8]) {
        let path = uri.split(separator: "?").first.map(String.init) ?? uri
        switch (method, path) {
        case (.GET, "/v1/status"):
            return (.ok, encode(router.status()))
        case (.GET, "/v1/status/peers"):
            return (.ok, encode(router.peerStatus()))
        case (.GET, "/v1/status/connections"):
            return (.ok, encode(router.connectionStatus()))
        case (.POST, "/v1/connect"), (.POST, "/v1/forget"):
            guard let request = try? JSONDecoder().decode(AddressRequest.self, from: Data(body)),
                  Router.split(Router.normalize(request.address, defaultPort: RouterConfig.defaultPort)) != nil else {
                return (.badRequest, error("expected {\"address\": \"HOST[:PORT]\"}"))
            }
            if path == "/v1/connect" {
                router.addTarget(request.address, permanent: true)
                return (.ok, encode(["result": "connecting to \(request.address)"]))
            }
            let known = router.forgetTarget(request.address)
            return (.ok, encode(["result": known ? "forgot \(request.address)" : "\(request.address) was not a target; it will not be learned from gossip"]))
        case (.POST, "/v1/stop"):
            router.loop.scheduleTask(in: .milliseconds(50)) { router.shutdown(because: "weft stop") }
            return (.ok, encode(["result": "stopping"]))
        default:
            return WorkloadAPI.handle(router: router, method: method, path: path, body: body)
                ?? (.notFound, error("no such endpoint: \(method) \(path)"))
        }
    }
}
