// One gossip connection (docs/protocol.md §3): preamble, handshake, framing, sealing. Every
// method runs on the router's event loop; the link reports to its router and never decides
// mesh questions (admission, duplicates) itself.
import Foundation
import NIOCore
import WeftCrypto
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

/// Timings of the gossip link (protocol.md §3.6 and §3.9).
enum LinkTimers {
    static let handshakeTimeout: TimeAmount = .seconds(5)
    static let keepaliveInterval: TimeAmount = .seconds(5)
    static let idleTimeout: TimeAmount = .seconds(20)
}

final class Link: @unchecked Sendable {  // confined to the router's event loop
    enum Phase { case preamble, handshake, established, closed }

    let direction: LinkDirection
    let channel: Channel
    let remoteIP: IPAddress?
    let remotePort: Int
    /// The address this link was dialed at (outbound only).
    let targetAddress: String?
    let localHello: Hello
    let localPSK: PreSharedKey?
    let startedAt = NIODeadline.now()
    private(set) var phase: Phase = .preamble
    private(set) var remoteHello: Hello?
    private(set) var remotePreamble: Preamble?
    private(set) var version: UInt8 = LinkVersion.minimum
    /// The PSK id this link's handshake used (the initiator's), nil without a password.
    private(set) var pskId: PSKID?
    private(set) var linkKeys: LinkKeys?
    /// Why the link is closing or failed to establish, for status and logs.
    private(set) var reason: String?
    /// The refusal that ended the link, sent or received.
    private(set) var refuseCode: RefuseCode?
    private(set) var establishedAt: Date?
    /// Key epoch: 0 after the handshake, +1 (wrapping) per rekey.
    private(set) var epoch: UInt8 = 0
    private(set) var lastRekeyAt: Date?
    /// When the current keys were made, for the rekey schedule.
    private(set) var keysSince = NIODeadline.now()
    /// The Noise chaining key the current keys come from; nil on a link without a password.
    private var chainingKey: [UInt8]?
    /// This side's rekey in flight: the new epoch, our ephemeral, the PSK to move to.
    private var rekeyStarted: (epoch: UInt8, ephemeral: RekeyEphemeral, psk: PreSharedKey?, at: NIODeadline)?
    /// The responder's half-done rekey: keys to switch to when REKEY_DONE arrives.
    private var rekeyAwaitingDone: (epoch: UInt8, keys: LinkKeys)?
    weak var delegate: LinkDelegate?

    private var decoder = FrameDecoder(limit: FrameLimits.beforeHandshake)
    private var noise: NoiseHandshakeState?
    private var sealer: LinkSealer?
    private var opener: LinkOpener?
    private var lastSent = NIODeadline.now()
    private var lastReceived = NIODeadline.now()
    private(set) var unknownMessages = 0

    init(direction: LinkDirection, channel: Channel, targetAddress: String?, localHello: Hello, localPSK: PreSharedKey?) {
        self.direction = direction
        self.channel = channel
        self.targetAddress = targetAddress
        self.localHello = localHello
        self.localPSK = localPSK
        let remote = channel.remoteAddress
        self.remoteIP = remote?.ipAddress.flatMap(IPAddress.init)
        self.remotePort = remote?.port ?? 0
    }

    var isInitiator: Bool { direction == .outbound }
    var isEstablished: Bool { phase == .established }
    var remoteName: PeerName? { remoteHello?.name }

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
        return ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)"
    }

    // MARK: driving the link

    func start() {
        let preamble = Preamble(hasPassword: localPSK != nil, pskId: localPSK?.id.bytes ?? [UInt8](repeating: 0, count: 8))
        writeRaw(preamble.encode())
    }

    func receive(_ buffer: inout ByteBuffer) {
        guard phase != .closed else { return }
        lastReceived = .now()
        decoder.append(buffer.readableBytesView)
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        do {
            if phase == .preamble {
                guard let raw = decoder.takeBuffered(Preamble.size) else { return }
                try handlePreamble(try Preamble.decode(raw))
            }
            while phase != .closed, let body = try decoder.next() {
                if phase == .established {
                    try handleTransport(body)
                } else {
                    try handleHandshake(body)
                }
            }
        } catch let error as WireError {
            fail("protocol error: \(error)", refuse: .protocolError)
        } catch {
            fail("protocol error: \(error)", refuse: .protocolError)
        }
    }

    /// Called about once a second: handshake timeout, keepalive, idle timeout.
    func tick(now: NIODeadline) {
        switch phase {
        case .preamble, .handshake:
            if now - startedAt > LinkTimers.handshakeTimeout {
                fail("handshake timed out after 5 s", refuse: .handshakeTimeout)
            }
        case .established:
            checkRekeyTimeout(now: now)
            if now - lastReceived > LinkTimers.idleTimeout {
                fail("no traffic from peer for 20 s", refuse: nil)
            } else if now - lastSent >= LinkTimers.keepaliveInterval {
                send(type: MessageType.keepalive.rawValue, payload: [])
            }
        case .closed:
            break
        }
    }

    /// Sends one transport message; sealed when the link has a password.
    func send(type: UInt8, payload: [UInt8]) {
        guard phase == .established else { return }
        var body = [UInt8]()
        body.reserveCapacity(payload.count + 1)
        body.append(type)
        body.append(contentsOf: payload)
        if sealer != nil { body = sealer!.seal(body) }
        writeFrame(body)
    }

    /// Closes the link, telling the remote why when a refusal code is given.
    func fail(_ reason: String, refuse code: RefuseCode?) {
        guard phase != .closed else { return }
        if self.reason == nil { self.reason = reason }
        if let code {
            refuseCode = code
            var body = [MessageType.refuse.rawValue] + Refuse(code: code, text: reason).encode()
            // Sealed once this side has session keys: on an established link, and for the dialer
            // refusing after message 2, whose peer has already switched to them (protocol.md §3.1).
            if sealer != nil { body = sealer!.seal(body) }
            writeFrame(body)
        }
        phase = .closed
        channel.close(promise: nil)
    }

    /// The transport closed underneath us.
    func closed() {
        if reason == nil { reason = phase == .established ? "connection closed by peer" : "connection closed during handshake" }
        phase = .closed
    }

    // MARK: handshake

    private func handlePreamble(_ remote: Preamble) throws {
        remotePreamble = remote
        guard let negotiated = LinkVersion.negotiate(remoteMin: remote.minVersion, remoteMax: remote.maxVersion) else {
            fail("no common protocol version (remote speaks \(remote.minVersion)…\(remote.maxVersion))", refuse: .noCommonVersion)
            return
        }
        version = negotiated
        phase = .handshake
        switch (localPSK != nil, remote.hasPassword) {
        case (true, false):
            fail("remote has no password; refusing to talk in clear", refuse: .passwordMismatch)
        case (false, true):
            fail("remote requires a password; none configured here", refuse: .passwordMismatch)
        case (false, false):
            if isInitiator { writeFrame([MessageType.helloPlain.rawValue] + localHello.encode()) }
        case (true, true):
            guard isInitiator, let localPSK else { return }
            pskId = localPSK.id
            var state = try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: prologue(pskId: localPSK.id), psk: localPSK.key)
            let message = try state.writeMessage(payload: localHello.encode())
            noise = state
            writeFrame([MessageType.handshakeInit.rawValue] + message)
        }
    }

    private func prologue(pskId: PSKID) -> [UInt8] { Array("weft".utf8) + [version] + pskId.bytes }

    private func handleHandshake(_ body: [UInt8]) throws {
        guard let typeByte = body.first else { throw WireError.truncated(what: "frame type") }
        let payload = Array(body.dropFirst())
        switch MessageType(rawValue: typeByte) {
        case .refuse:
            let refusal = try Refuse.decode(payload)
            remoteRefused(refusal)
        case .helloPlain where localPSK == nil:
            let hello = try Hello.decode(payload)
            guard admit(hello) else { return }
            if !isInitiator { writeFrame([MessageType.helloPlain.rawValue] + localHello.encode()) }
            establish(chainingKey: nil)
        case .handshakeInit where !isInitiator && localPSK != nil && noise == nil:
            let id = PSKID(bytes: remotePreamble?.pskId ?? PSKID.zero.bytes)
            pskId = id
            guard let psk = delegate?.psk(for: id) else {
                fail("authentication failed: wrong password (unknown password id \(id))", refuse: .unknownPSKId)
                return
            }
            var state = try NoiseHandshakeState(protocol: .weftLink, initiator: false, prologue: prologue(pskId: id), psk: psk.key)
            let helloBytes: [UInt8]
            do { helloBytes = try state.readMessage(payload) } catch {
                fail("authentication failed: handshake did not verify", refuse: .handshakeFailed)
                return
            }
            let hello = try Hello.decode(helloBytes)
            guard admit(hello) else { return }
            let response = try state.writeMessage(payload: localHello.encode())
            writeFrame([MessageType.handshakeResponse.rawValue] + response)
            establish(chainingKey: state.chainingKey)
        case .handshakeResponse where isInitiator && noise != nil:
            var state = noise!
            let helloBytes: [UInt8]
            do { helloBytes = try state.readMessage(payload) } catch {
                fail("authentication failed: handshake response did not verify", refuse: .handshakeFailed)
                return
            }
            noise = state
            let hello = try Hello.decode(helloBytes)
            // The responder is established from here on: a refusal from admit goes sealed.
            sealer = LinkSealer(key: sendKey(LinkKeys.derive(chainingKey: state.chainingKey)))
            guard admit(hello) else { return }
            establish(chainingKey: state.chainingKey)
        default:
            throw WireError.invalid(what: "message type \(typeByte) during handshake")
        }
    }

    private func admit(_ hello: Hello) -> Bool {
        remoteHello = hello
        if let refusal = delegate?.linkAuthenticated(self) {
            fail(refusal.text, refuse: refusal.code)
            return false
        }
        return true
    }

    private func remoteRefused(_ refusal: Refuse) {
        refuseCode = refusal.code
        let text: String
        switch refusal.code {
        case .unknownPSKId:
            text = "authentication failed: wrong password (unknown password id \(pskId?.description ?? "?") at the remote)"
        case .handshakeFailed:
            text = "authentication failed: wrong password (remote could not verify our handshake)"
        default:
            text = "refused by remote: \(refusal.text)"
        }
        if reason == nil { reason = text }
        phase = .closed
        channel.close(promise: nil)
    }

    private func establish(chainingKey: [UInt8]?) {
        noise = nil
        self.chainingKey = chainingKey
        let keys = chainingKey.map(LinkKeys.derive)
        linkKeys = keys
        if let keys {
            sealer = LinkSealer(key: sendKey(keys))
            opener = LinkOpener(key: receiveKey(keys))
        }
        keysSince = .now()
        decoder.limit = FrameLimits.afterHandshake
        phase = .established
        establishedAt = Date()
        lastReceived = .now()
        delegate?.linkEstablished(self)
    }

    // MARK: transport

    private func handleTransport(_ body: [UInt8]) throws {
        var plain = body
        if opener != nil {
            do { plain = try opener!.open(body) } catch {
                fail("a sealed message did not verify; closing the link", refuse: nil)
                return
            }
        }
        guard let type = plain.first else { throw WireError.truncated(what: "message type") }
        let payload = Array(plain.dropFirst())
        switch MessageType(rawValue: type) {
        case .keepalive:
            break
        case .refuse:
            remoteRefused(try Refuse.decode(payload))
        case .rekeyInit:
            try handleRekeyInit(try RekeyInit.decode(payload))
        case .rekeyResponse:
            try handleRekeyResponse(try RekeyResponse.decode(payload))
        case .rekeyDone:
            var reader = ByteReader(payload)
            handleRekeyDone(epoch: try reader.u8("rekey epoch"))
        default:
            delegate?.link(self, received: type, payload: payload)
        }
    }

    func countUnknownMessage() { unknownMessages += 1 }

    // MARK: rekeying (protocol.md §3.7)

    private func sendKey(_ keys: LinkKeys) -> [UInt8] { isInitiator ? keys.tcpInitiatorToResponder : keys.tcpResponderToInitiator }
    private func receiveKey(_ keys: LinkKeys) -> [UInt8] { isInitiator ? keys.tcpResponderToInitiator : keys.tcpInitiatorToResponder }

    var canRekey: Bool { phase == .established && chainingKey != nil }
    var rekeyInProgress: Bool { rekeyStarted != nil || rekeyAwaitingDone != nil }
    /// Messages sealed under the current gossip key, for the message-count limit.
    var sealedMessages: UInt64 { sealer?.counter ?? 0 }

    /// Starts a rekey; `psk` moves the link to another password. False when one is under way
    /// or the link has no keys.
    @discardableResult
    func startRekey(psk: PreSharedKey?) -> Bool {
        guard canRekey, !rekeyInProgress else { return false }
        let ephemeral = RekeyEphemeral()
        let next = epoch &+ 1
        rekeyStarted = (next, ephemeral, psk, .now())
        send(type: MessageType.rekeyInit.rawValue,
             payload: RekeyInit(epoch: next, pskId: psk?.id.bytes ?? PSKID.zero.bytes, ephemeral: ephemeral.publicKey).encode())
        return true
    }

    private func handleRekeyInit(_ message: RekeyInit) throws {
        guard let chainingKey else { throw WireError.invalid(what: "rekey on a link without keys") }
        if rekeyStarted != nil {
            // Both sides started at once: the link's dialer wins, the other answers.
            if isInitiator { return }
            rekeyStarted = nil
            delegate?.linkRekeyEnded(self, failure: nil)
        }
        guard message.epoch == epoch &+ 1, rekeyAwaitingDone == nil else {
            throw WireError.invalid(what: "rekey epoch \(message.epoch), expected \(epoch &+ 1)")
        }
        var psk: PreSharedKey?
        let id = PSKID(bytes: message.pskId)
        if id != PSKID.zero {
            psk = delegate?.psk(for: id)
            guard psk != nil else {
                send(type: MessageType.rekeyResponse.rawValue,
                     payload: RekeyResponse(epoch: message.epoch, status: RekeyResponse.unknownPSK, ephemeral: [UInt8](repeating: 0, count: 32)).encode())
                return
            }
        }
        let ours = RekeyEphemeral()
        let next = try Rekey.nextChainingKey(chainingKey, ours: ours, theirPublicKey: message.ephemeral, psk: psk?.key ?? [])
        let keys = LinkKeys.derive(chainingKey: next)
        // Accept the new epoch before telling the initiator, which starts using it at once.
        delegate?.link(self, acceptEpoch: message.epoch, keys: keys)
        send(type: MessageType.rekeyResponse.rawValue,
             payload: RekeyResponse(epoch: message.epoch, status: RekeyResponse.accepted, ephemeral: ours.publicKey).encode())
        // Everything after the response is sealed with the new key; the initiator's messages
        // switch after its REKEY_DONE.
        sealer = LinkSealer(key: sendKey(keys))
        adopt(chainingKey: next, keys: keys, epoch: message.epoch, psk: psk)
        rekeyAwaitingDone = (message.epoch, keys)
    }

    private func handleRekeyResponse(_ message: RekeyResponse) throws {
        guard let started = rekeyStarted, started.epoch == message.epoch, let chainingKey else {
            throw WireError.invalid(what: "unexpected rekey response")
        }
        rekeyStarted = nil
        guard message.status == RekeyResponse.accepted else {
            delegate?.linkRekeyEnded(self, failure: "peer does not hold password id \(started.psk?.id.description ?? "?")")
            return
        }
        let next = try Rekey.nextChainingKey(chainingKey, ours: started.ephemeral, theirPublicKey: message.ephemeral, psk: started.psk?.key ?? [])
        let keys = LinkKeys.derive(chainingKey: next)
        opener = LinkOpener(key: receiveKey(keys))
        delegate?.link(self, acceptEpoch: message.epoch, keys: keys)
        delegate?.link(self, sendEpoch: message.epoch, keys: keys)
        send(type: MessageType.rekeyDone.rawValue, payload: [message.epoch])
        sealer = LinkSealer(key: sendKey(keys))
        adopt(chainingKey: next, keys: keys, epoch: message.epoch, psk: started.psk)
        delegate?.linkRekeyEnded(self, failure: nil)
    }

    private func handleRekeyDone(epoch done: UInt8) {
        guard let waiting = rekeyAwaitingDone, waiting.epoch == done else { return }
        rekeyAwaitingDone = nil
        opener = LinkOpener(key: receiveKey(waiting.keys))
        delegate?.link(self, sendEpoch: done, keys: waiting.keys)
        delegate?.linkRekeyEnded(self, failure: nil)
    }

    private func adopt(chainingKey newKey: [UInt8], keys: LinkKeys, epoch newEpoch: UInt8, psk: PreSharedKey?) {
        chainingKey = newKey
        linkKeys = keys
        epoch = newEpoch
        if let psk { pskId = psk.id }
        lastRekeyAt = Date()
        keysSince = .now()
    }

    /// A rekey that got no answer within 10 s means the link is broken.
    func checkRekeyTimeout(now: NIODeadline) {
        if let started = rekeyStarted, now - started.at > .seconds(10) {
            fail("rekey got no answer within 10 s", refuse: .protocolError)
        }
    }

    private func writeFrame(_ body: [UInt8]) {
        writeRaw(FrameDecoder.frame(body))
    }

    private func writeRaw(_ bytes: [UInt8]) {
        lastSent = .now()
        let buffer = channel.allocator.buffer(bytes: bytes)
        channel.writeAndFlush(buffer, promise: nil)
    }
}

/// The NIO handler that feeds a Link. Kept thin: the state machine lives in Link.
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
