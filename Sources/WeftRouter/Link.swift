// One gossip connection (docs/protocol.md §3) on its NIO channel: the protocol is WeftLink's
// state machine; this file carries its actions out. Every method runs on the router's event
// loop; the link reports to its router and never decides mesh questions (admission,
// duplicates) itself.
import Foundation
import NIOCore
import WeftControl
import WeftCrypto
import WeftLink
import WeftMesh
import WeftWire

/// What a link tells its owner. Called on the router's event loop.
protocol LinkDelegate: AnyObject {
    /// The remote's hello has been authenticated. Return a refusal to close the link, nil to admit it.
    func linkAuthenticated(_ link: Link) -> Refuse?
    func linkEstablished(_ link: Link)
    func link(_ link: Link, received type: UInt8, payload: [UInt8])
    /// The PSK to use for a handshake the remote started under `id`, nil if not in the keyring.
    func psk(for id: PSKID) -> PreSharedKey?
    /// Rekeying (protocol.md §3.7): from now on accept sleeve packets of `epoch` under `keys`.
    func link(_ link: Link, acceptEpoch epoch: UInt8, keys: LinkKeys)
    /// From now on send sleeve packets with `epoch` under `keys`.
    func link(_ link: Link, sendEpoch epoch: UInt8, keys: LinkKeys)
    /// A rekey this side took part in ended; `failure` says why it did not happen.
    func linkRekeyEnded(_ link: Link, failure: String?)
}

/// One gossip connection: a `LinkStateMachine` (Sources/WeftLink/LinkStateMachine.swift) on a NIO
/// channel. It feeds the machine what the channel read and the router's ticks, and carries out
/// the actions: writes, closes, and the delegate calls.
final class Link: @unchecked Sendable {  // confined to the router's event loop
    let direction: LinkDirection
    let channel: Channel
    let remoteIP: IPAddress?
    let remotePort: Int
    /// The address this link was dialed at (outbound only).
    let targetAddress: String?
    private var machine: LinkStateMachine
    private(set) var establishedAt: Date?
    private(set) var lastRekeyAt: Date?
    /// Bytes of this connection on the wire each way (preamble, handshake, every frame), so
    /// status and metrics can show what gossip costs (#12).
    private(set) var bytesSent: UInt64 = 0
    private(set) var bytesReceived: UInt64 = 0
    /// Set once the channel was told to close: later actions of the same batch are moot.
    private var closing = false
    /// How deep the calls of `perform` are: above 0 while a batch of actions is carried out.
    private var batchDepth = 0
    /// Writes and a close made from inside a batch, written when the outermost batch is done.
    private var heldWrites: [LinkAction] = []
    /// A close is held: the rest of the batch writes its frames and does nothing else.
    private var ownerClosed = false
    weak var delegate: LinkDelegate?

    init(direction: LinkDirection, channel: Channel, targetAddress: String?, localHello: Hello, localPSK: PreSharedKey?, identity: IdentityKey) {
        self.direction = direction
        self.channel = channel
        self.targetAddress = targetAddress
        machine = LinkStateMachine(initiator: direction == .outbound, localHello: localHello, localPSK: localPSK, identity: identity,
                                   now: Self.now())
        let remote = channel.remoteAddress
        self.remoteIP = remote?.ipAddress.flatMap(IPAddress.init)
        self.remotePort = remote?.port ?? 0
    }

    var startedAt: NIODeadline { .uptimeNanoseconds(machine.startedAt) }
    var isInitiator: Bool { machine.isInitiator }
    var isEstablished: Bool { machine.isEstablished }
    var localHello: Hello { machine.localHello }
    var remoteHello: Hello? { machine.remoteHello }
    var remotePreamble: Preamble? { machine.remotePreamble }
    var remoteName: PeerName? { machine.remoteHello?.name }
    /// The peer's identity public key, authenticated by the handshake; nil without a password.
    var remoteIdentity: [UInt8]? { machine.remoteIdentity }
    var pskId: PSKID? { machine.pskId }
    var linkKeys: LinkKeys? { machine.linkKeys }
    var reason: String? { machine.reason }
    var refuseCode: RefuseCode? { machine.refuseCode }
    var epoch: UInt8 { machine.epoch }
    var keysSince: NIODeadline { .uptimeNanoseconds(machine.keysSince) }
    var unknownMessages: Int { machine.unknownMessages }
    var canRekey: Bool { machine.canRekey }
    var rekeyInProgress: Bool { machine.rekeyInProgress }
    var sealedMessages: UInt64 { machine.sealedMessages }

    /// `ip:port` of the other end of the TCP connection.
    var socketAddress: String { Self.format(ip: remoteIP, port: remotePort) }

    /// Where the remote router accepts gossip connections: the dialed address for outbound
    /// links, the remote IP with the port from its hello for inbound ones.
    var remoteGossipAddress: String {
        if let targetAddress { return targetAddress }
        return Self.format(ip: remoteIP, port: Int(remoteHello?.gossipPort ?? 0))
    }

    var trusted: Bool {
        guard let remoteHello else { return false }
        return LinkPolicy.trusted(localTrustsRemote: localHello.trustsRemote, remoteTrustsLocal: remoteHello.trustsRemote)
    }

    static func format(ip: IPAddress?, port: Int) -> String {
        guard let ip else { return "?:\(port)" }
        return ip.endpoint(port: port)
    }

    private static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    // MARK: driving the link

    func start() { perform(machine.start(now: Self.now())) }

    func receive(_ buffer: inout ByteBuffer) {
        bytesReceived &+= UInt64(buffer.readableBytes)
        let actions = machine.receive(buffer.readableBytesView, now: Self.now(), keyring: keyring)
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        perform(actions)
        // One delivered message at a time: its handling (a password offered, an answer sealed
        // under the current key) comes before the machine reads the frame behind it.
        while machine.waitsForOwner && !closing { perform(machine.resume(now: Self.now(), keyring: keyring)) }
    }

    /// Called about once a second: handshake timeout, keepalive, idle and rekey timeouts.
    func tick(now: NIODeadline) { perform(machine.tick(now: now.uptimeNanoseconds)) }

    /// Sends one transport message; sealed when the link has a password.
    func send(type: UInt8, payload: [UInt8]) { perform(machine.send(type: type, payload: payload, now: Self.now())) }

    /// Closes the link, telling the remote why when a refusal code is given.
    func fail(_ reason: String, refuse code: RefuseCode?) { perform(machine.fail(reason, refuse: code, now: Self.now())) }

    /// The transport closed underneath us.
    func closed() { machine.transportClosed() }

    func countUnknownMessage() { machine.countUnknownMessage() }

    /// Starts a rekey; `psk` moves the link to another password. False when one is under way
    /// or the link has no keys.
    @discardableResult
    func startRekey(psk: PreSharedKey?) -> Bool {
        guard let actions = machine.startRekey(psk: psk, now: Self.now()) else { return false }
        perform(actions)
        return true
    }

    private var keyring: LinkKeyring { { [weak self] id in self?.delegate?.psk(for: id) } }

    /// Carries out the machine's actions in their order (protocol.md §3.7, "Order of writes").
    /// The machine seals each frame when it makes it, with a counter nonce and, across a rekey,
    /// with the key of that moment, so frames must reach the wire in the order they were made.
    /// A delegate call inside a batch may make more (a gossip answer from inside a delivery, a
    /// rekey started when one ended): those are made after every frame of the batch, so their
    /// writes, and a close, are held until the outermost batch is done; their other actions
    /// are carried out at once, which keeps "accept an epoch before the peer is told".
    private func perform(_ actions: [LinkAction]) {
        if batchDepth > 0 {
            for action in actions {
                switch action {
                case .write, .close:
                    heldWrites.append(action)
                    if case .close = action { ownerClosed = true }
                default:
                    continue
                }
            }
            for action in actions {
                switch action {
                case .write, .close: continue
                default: carryOut(action)
                }
            }
            return
        }
        batchDepth += 1
        for action in actions { carryOut(action) }
        batchDepth -= 1
        let held = heldWrites
        heldWrites = []
        for action in held { carryOut(action) }
    }

    private func carryOut(_ action: LinkAction) {
        guard !closing else { return }
        switch action {
        case .write(let bytes):
            bytesSent &+= UInt64(bytes.count)
            channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
            return
        case .close:
            closing = true
            channel.close(promise: nil)
            return
        default:
            break
        }
        // Closed from inside this batch (malformed gossip): its frames still go out, in order,
        // so the peer can read the refusal, but nothing more is delivered or switched.
        guard !ownerClosed else { return }
        switch action {
        case .authenticate:
            let refusal = delegate?.linkAuthenticated(self)
            perform(machine.admit(refusal, now: Self.now(), keyring: keyring))
        case .established:
            establishedAt = Date()
            delegate?.linkEstablished(self)
        case .deliver(let type, let payload):
            delegate?.link(self, received: type, payload: payload)
        case .acceptEpoch(let epoch, let keys):
            lastRekeyAt = Date()
            delegate?.link(self, acceptEpoch: epoch, keys: keys)
        case .sendEpoch(let epoch, let keys):
            delegate?.link(self, sendEpoch: epoch, keys: keys)
        case .rekeyEnded(let failure):
            delegate?.linkRekeyEnded(self, failure: failure)
        case .write, .close:
            break
        }
    }
}

/// The NIO handler that feeds a Link.
final class LinkChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let makeLink: (Channel) -> Link?
    private var link: Link?
    private let onClose: (Link) -> Void

    init(makeLink: @escaping (Channel) -> Link?, onClose: @escaping (Link) -> Void) {
        self.makeLink = makeLink
        self.onClose = onClose
    }

    func channelActive(context: ChannelHandlerContext) {
        link = makeLink(context.channel)
        if let link { link.start() } else { context.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        link?.receive(&buffer)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let link {
            link.closed()
            onClose(link)
        }
        link = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset or a read error ends this link only; the router carries on.
        context.close(promise: nil)
    }
}
