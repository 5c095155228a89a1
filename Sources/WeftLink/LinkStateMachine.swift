// The gossip link protocol (docs/protocol.md §3) as a state machine: received bytes, timer ticks
// and the owner's decisions go in, actions come out. It speaks protocol version 2: with a
// password, the identity handshake of §3.10 (XXpsk0, driven through IdentityHandshake.swift);
// without one, HELLO_PLAIN. No sockets and no clocks: the owner passes the time (`now`, monotonic
// nanoseconds) and carries the actions out in order (Sources/WeftRouter/Link.swift does so on a
// NIO channel).
import WeftCrypto
import WeftWire

/// Timings of the gossip link (protocol.md §3.6, §3.7, §3.9), in nanoseconds.
public enum LinkTimings {
    /// Long enough for a router that is busy with a burst of joins to answer: at 5 s, 100 routers
    /// joining at once timed out thousands of their own handshakes (docs/protocol.md §3.9).
    public static let handshakeTimeout: UInt64 = 10_000_000_000
    public static let keepaliveInterval: UInt64 = 5_000_000_000
    public static let idleTimeout: UInt64 = 20_000_000_000
    public static let rekeyAnswerTimeout: UInt64 = 10_000_000_000
}

/// What the owner of a link must do, in the order given.
public enum LinkAction {
    /// Write these bytes to the connection.
    case write([UInt8])
    /// The remote's hello is authenticated (with a password, together with its identity key,
    /// `remoteIdentity`): decide admission (protocol.md §3.9) and answer with
    /// `admit(_:now:keyring:)`. The machine reads nothing further until then.
    case authenticate(Hello)
    /// The handshake is complete; `keys` is nil on a link without a password.
    case established(keys: LinkKeys?)
    /// A transport message that is not the link's own (gossip, password rotation, unknown types).
    /// The machine reads nothing further until the owner has handled it and calls
    /// `resume(now:keyring:)`: what the owner does with it (a password offered, an answer sent
    /// under the current key) comes before the next frame is read.
    case deliver(type: UInt8, payload: [UInt8])
    /// Rekeying: from now on accept sleeve packets of `epoch` under `keys`.
    case acceptEpoch(UInt8, keys: LinkKeys)
    /// Rekeying: from now on send sleeve packets with `epoch` under `keys`.
    case sendEpoch(UInt8, keys: LinkKeys)
    /// A rekey this side took part in ended; `failure` says why it did not happen.
    case rekeyEnded(failure: String?)
    /// Close the connection: the link is over (`reason` and `refuseCode` say why).
    case close(reason: String, refusal: RefuseCode?)
}

/// Looks a PSK up by id among the keys a router accepts; nil when it does not hold it.
public typealias LinkKeyring = (PSKID) -> PreSharedKey?

/// One gossip link, from the preamble to its close.
public struct LinkStateMachine {
    public enum State: Sendable, Equatable {
        /// Waiting for the remote's preamble (ours is written by `start`).
        case preamble
        /// Neither side has a password: waiting for HELLO_PLAIN.
        case hello
        /// Both have a password: the identity handshake (XXpsk0, protocol.md §3.10) is under way.
        case handshaking
        case established
        /// Established, with a rekey in flight (protocol.md §3.7).
        case rekeying
        /// Closed or closing; nothing more is read or written.
        case closing
    }

    /// The dialer of the TCP connection: Noise initiator, and winner of crossing rekeys.
    public let isInitiator: Bool
    public let localHello: Hello
    public let localPSK: PreSharedKey?
    /// This router's identity key pair: its static key in the handshake.
    public let identity: IdentityKey
    public let startedAt: UInt64

    public private(set) var remotePreamble: Preamble?
    public private(set) var remoteHello: Hello?
    /// The remote's identity public key, once the handshake authenticated it (and its hello's
    /// name was checked against it); nil before, and on a link without a password.
    public private(set) var remoteIdentity: [UInt8]?
    public private(set) var version: UInt8 = LinkVersion.minimum
    /// The PSK id the link's keys come from (the initiator's, or the last rekey's); nil without a password.
    public private(set) var pskId: PSKID?
    public private(set) var linkKeys: LinkKeys?
    /// Why the link closed, for status and logs.
    public private(set) var reason: String?
    /// The refusal that ended the link, sent or received.
    public private(set) var refuseCode: RefuseCode?
    /// Key epoch: 0 after the handshake, +1 (wrapping) per rekey.
    public private(set) var epoch: UInt8 = 0
    /// When the current keys were made, for the rekey schedule.
    public private(set) var keysSince: UInt64
    /// Transport messages of types the owner did not know (protocol.md §3.6).
    public private(set) var unknownMessages = 0

    private enum Phase { case preamble, hello, handshaking, established, closing }
    private var phase: Phase = .preamble

    /// The remote hello was authenticated and waits for the owner's admission; what to do if admitted.
    private enum Admission {
        case plain
        /// The initiator has read message 2: it writes message 3 with this handshake.
        case finish(IdentityHandshake)
        /// The responder has read message 3; its keys come from this chaining key.
        case complete(chainingKey: [UInt8])
    }
    private var admission: Admission?
    /// A message was delivered; frames behind it wait for `resume`.
    public private(set) var waitsForOwner = false

    private enum Rekeying {
        /// This side sent REKEY_INIT.
        case started(epoch: UInt8, ephemeral: RekeyEphemeral, psk: PreSharedKey?, at: UInt64)
        /// This side answered; it switches its receive key on REKEY_DONE.
        case awaitingDone(epoch: UInt8, keys: LinkKeys)
    }
    private var rekey: Rekeying?

    private var decoder = FrameDecoder(limit: FrameLimits.beforeHandshake)
    /// The handshake between its messages: the initiator's until it reads message 2, the
    /// responder's from message 1 until it reads message 3.
    private var handshake: IdentityHandshake?
    /// The chaining key the current keys come from; nil on a link without a password.
    private var chainingKey: [UInt8]?
    private var sealer: LinkSealer?
    private var opener: LinkOpener?
    private var lastSent: UInt64
    private var lastReceived: UInt64
    /// Actions of the call in progress.
    private var output: [LinkAction] = []

    public init(initiator: Bool, localHello: Hello, localPSK: PreSharedKey?, identity: IdentityKey, now: UInt64) {
        isInitiator = initiator
        self.localHello = localHello
        self.localPSK = localPSK
        self.identity = identity
        startedAt = now
        keysSince = now
        lastSent = now
        lastReceived = now
    }

    public var state: State {
        switch phase {
        case .preamble: return .preamble
        case .hello: return .hello
        case .handshaking: return .handshaking
        case .established: return rekey == nil ? .established : .rekeying
        case .closing: return .closing
        }
    }

    public var isEstablished: Bool { phase == .established }
    public var canRekey: Bool { phase == .established && chainingKey != nil }
    public var rekeyInProgress: Bool { rekey != nil }
    /// Messages sealed under the current gossip key, for the message-count limit.
    public var sealedMessages: UInt64 { sealer?.counter ?? 0 }

    // MARK: events

    /// Our preamble; call once, when the connection is up.
    public mutating func start(now: UInt64) -> [LinkAction] {
        let preamble = Preamble(hasPassword: localPSK != nil, pskId: localPSK?.id.bytes ?? PSKID.zero.bytes)
        write(preamble.encode(), now: now)
        return drain()
    }

    /// Bytes the connection delivered.
    public mutating func receive<C: Collection>(_ bytes: C, now: UInt64, keyring: LinkKeyring) -> [LinkAction] where C.Element == UInt8 {
        guard phase != .closing else { return [] }
        lastReceived = now
        decoder.append(bytes)
        process(now: now, keyring: keyring)
        return drain()
    }

    /// The owner's answer to `.authenticate`: nil admits the remote, a refusal closes the link.
    public mutating func admit(_ refusal: Refuse?, now: UInt64, keyring: LinkKeyring) -> [LinkAction] {
        guard phase != .closing, let pending = admission else { return [] }
        admission = nil
        if let refusal {
            end(refusal.text, refuse: refusal.code, now: now)
            return drain()
        }
        do {
            switch pending {
            case .plain:
                if !isInitiator { writeFrame([MessageType.helloPlain.rawValue] + localHello.encode(), now: now) }
                establish(chainingKey: nil, now: now)
            case .finish(var handshake):
                let message = try handshake.writeMessage3(hello: localHello)
                writeFrame([MessageType.handshakeFinish.rawValue] + message, now: now)
                establish(chainingKey: handshake.chainingKey, now: now)
            case .complete(let chainingKey):
                establish(chainingKey: chainingKey, now: now)
            }
        } catch {
            end("protocol error: \(error)", refuse: .protocolError, now: now)
            return drain()
        }
        // Frames that arrived behind the hello.
        process(now: now, keyring: keyring)
        return drain()
    }

    /// The owner has handled the last `.deliver`: reads the frames behind it.
    public mutating func resume(now: UInt64, keyring: LinkKeyring) -> [LinkAction] {
        guard phase != .closing, waitsForOwner else { waitsForOwner = false; return [] }
        waitsForOwner = false
        process(now: now, keyring: keyring)
        return drain()
    }

    /// Called about once a second: handshake timeout, rekey timeout, idle timeout, keepalive.
    public mutating func tick(now: UInt64) -> [LinkAction] {
        switch phase {
        case .preamble, .hello, .handshaking:
            if Self.elapsed(now, since: startedAt) > LinkTimings.handshakeTimeout {
                end("handshake timed out after \(LinkTimings.handshakeTimeout / 1_000_000_000) s", refuse: .handshakeTimeout, now: now)
            }
        case .established:
            if case .started(_, _, _, let at) = rekey, Self.elapsed(now, since: at) > LinkTimings.rekeyAnswerTimeout {
                end("rekey got no answer within 10 s", refuse: .protocolError, now: now)
            } else if Self.elapsed(now, since: lastReceived) > LinkTimings.idleTimeout {
                end("no traffic from peer for 20 s", refuse: nil, now: now)
            } else if Self.elapsed(now, since: lastSent) >= LinkTimings.keepaliveInterval {
                sendTransport(MessageType.keepalive.rawValue, [], now: now)
            }
        case .closing:
            break
        }
        return drain()
    }

    /// One transport message, sealed when the link has a password; nothing before the link is established.
    public mutating func send(type: UInt8, payload: [UInt8], now: UInt64) -> [LinkAction] {
        sendTransport(type, payload, now: now)
        return drain()
    }

    /// Closes the link, telling the remote why when a refusal code is given.
    public mutating func fail(_ reason: String, refuse code: RefuseCode?, now: UInt64) -> [LinkAction] {
        end(reason, refuse: code, now: now)
        return drain()
    }

    /// The connection closed underneath the link.
    public mutating func transportClosed() {
        if reason == nil { reason = phase == .established ? "connection closed by peer" : "connection closed during handshake" }
        phase = .closing
        // Nothing more is read, so nothing waits for the owner: a delivery whose handling saw the
        // connection close (a write that failed inside it) must not leave the owner resuming forever.
        waitsForOwner = false
    }

    /// The owner ignored a delivered message of a type it does not know.
    public mutating func countUnknownMessage() { unknownMessages += 1 }

    /// Starts a rekey; `psk` moves the link to another password. Nil when one is under way or the
    /// link has no keys.
    public mutating func startRekey(psk: PreSharedKey?, now: UInt64) -> [LinkAction]? {
        guard canRekey, rekey == nil else { return nil }
        let ephemeral = RekeyEphemeral()
        let next = epoch &+ 1
        rekey = .started(epoch: next, ephemeral: ephemeral, psk: psk, at: now)
        sendTransport(MessageType.rekeyInit.rawValue,
                      RekeyInit(epoch: next, pskId: psk?.id.bytes ?? PSKID.zero.bytes, ephemeral: ephemeral.publicKey).encode(), now: now)
        return drain()
    }

    // MARK: reading

    private mutating func process(now: UInt64, keyring: LinkKeyring) {
        do {
            if phase == .preamble {
                guard let raw = decoder.takeBuffered(Preamble.size) else { return }
                try handlePreamble(try Preamble.decode(raw), now: now)
            }
            while phase != .closing, admission == nil, !waitsForOwner, let body = try decoder.next() {
                if phase == .established {
                    try handleTransport(body, now: now, keyring: keyring)
                } else {
                    try handleHandshake(body, now: now, keyring: keyring)
                }
            }
        } catch {
            end("protocol error: \(error)", refuse: .protocolError, now: now)
        }
    }

    private mutating func handlePreamble(_ remote: Preamble, now: UInt64) throws {
        remotePreamble = remote
        guard let negotiated = LinkVersion.negotiate(remoteMin: remote.minVersion, remoteMax: remote.maxVersion) else {
            end(LinkVersion.unsupported(remoteMin: remote.minVersion, remoteMax: remote.maxVersion), refuse: .noCommonVersion, now: now)
            return
        }
        version = negotiated
        switch (localPSK, remote.hasPassword) {
        case (.some, false):
            end("remote has no password; refusing to talk in clear", refuse: .passwordMismatch, now: now)
        case (nil, true):
            end("remote requires a password; none configured here", refuse: .passwordMismatch, now: now)
        case (nil, false):
            phase = .hello
            if isInitiator { writeFrame([MessageType.helloPlain.rawValue] + localHello.encode(), now: now) }
        case (.some(let psk), true):
            phase = .handshaking
            guard isInitiator else { return }
            pskId = psk.id
            var handshake = try IdentityHandshake(initiator: true, psk: psk, prologuePSKId: psk.id, version: version, identity: identity)
            let message = try handshake.writeMessage1()
            self.handshake = handshake
            writeFrame([MessageType.handshakeInit.rawValue] + message, now: now)
        }
    }

    private mutating func handleHandshake(_ body: [UInt8], now: UInt64, keyring: LinkKeyring) throws {
        guard let typeByte = body.first else { throw WireError.truncated(what: "frame type") }
        let payload = Array(body.dropFirst())
        switch MessageType(rawValue: typeByte) {
        case .refuse:
            remoteRefused(try Refuse.decode(payload))
        case .helloPlain where phase == .hello:
            authenticated(try Hello.decode(payload), then: .plain)
        case .handshakeInit where phase == .handshaking && !isInitiator && pskId == nil:
            let id = PSKID(bytes: remotePreamble?.pskId ?? PSKID.zero.bytes)
            pskId = id
            guard let psk = keyring(id) else {
                end("authentication failed: wrong password (unknown password id \(id))", refuse: .unknownPSKId, now: now)
                return
            }
            var handshake = try IdentityHandshake(initiator: false, psk: psk, prologuePSKId: id, version: version, identity: identity)
            do {
                try handshake.readMessage1(payload)
            } catch .payloadInMessage1 {
                // Message 1 is replayable and not forward-secret: version 2 puts nothing in it.
                throw WireError.invalid(what: "handshake message 1 with a payload (version 2 sends it empty)")
            } catch {
                end("authentication failed: handshake did not verify", refuse: .handshakeFailed, now: now)
                return
            }
            // The responder does not know the initiator yet: admission waits for message 3.
            let response = try handshake.writeMessage2(hello: localHello)
            self.handshake = handshake
            writeFrame([MessageType.handshakeResponse.rawValue] + response, now: now)
        case .handshakeResponse where phase == .handshaking && isInitiator && handshake != nil:
            var handshake = self.handshake!
            self.handshake = nil
            let peer: IdentityHandshake.Peer
            do {
                peer = try handshake.readMessage2(payload)
            } catch IdentityHandshake.Failure.didNotVerify {
                end("authentication failed: handshake response did not verify", refuse: .handshakeFailed, now: now)
                return
            } catch IdentityHandshake.Failure.identity(let refusal) {
                // In clear: the responder gets the keys only from message 3 (protocol.md §3.10).
                end(refusal.text, refuse: refusal.code, now: now)
                return
            }
            remoteIdentity = peer.identityKey
            authenticated(peer.hello, then: .finish(handshake))
        case .handshakeFinish where phase == .handshaking && !isInitiator && handshake != nil:
            var handshake = self.handshake!
            self.handshake = nil
            let peer: IdentityHandshake.Peer
            do {
                peer = try handshake.readMessage3(payload)
            } catch IdentityHandshake.Failure.didNotVerify {
                end("authentication failed: handshake message 3 did not verify", refuse: .handshakeFailed, now: now)
                return
            } catch IdentityHandshake.Failure.identity(let refusal) {
                // Message 3 verified, so the initiator is established: it opens this refusal
                // with the session key (nonce 0).
                sealer = LinkSealer(key: sendKey(LinkKeys.derive(chainingKey: handshake.chainingKey)))
                end(refusal.text, refuse: refusal.code, now: now)
                return
            }
            remoteIdentity = peer.identityKey
            // The initiator is established from here on: a refusal at admission must be sealed
            // (nonce 0) for it to read (protocol.md §3.1).
            sealer = LinkSealer(key: sendKey(LinkKeys.derive(chainingKey: handshake.chainingKey)))
            authenticated(peer.hello, then: .complete(chainingKey: handshake.chainingKey))
        default:
            throw WireError.invalid(what: "message type \(typeByte) during handshake")
        }
    }

    private mutating func authenticated(_ hello: Hello, then next: Admission) {
        remoteHello = hello
        admission = next
        output.append(.authenticate(hello))
    }

    private mutating func remoteRefused(_ refusal: Refuse) {
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
        phase = .closing
        output.append(.close(reason: reason ?? text, refusal: refusal.code))
    }

    /// Whether a sealed message from the remote has verified on this link yet.
    private var openedSealed = false

    private mutating func establish(chainingKey: [UInt8]?, now: UInt64) {
        self.chainingKey = chainingKey
        let keys = chainingKey.map(LinkKeys.derive)
        linkKeys = keys
        if let keys {
            sealer = LinkSealer(key: sendKey(keys))
            opener = LinkOpener(key: receiveKey(keys))
        }
        keysSince = now
        decoder.limit = FrameLimits.afterHandshake
        phase = .established
        lastReceived = now
        output.append(.established(keys: keys))
    }

    private mutating func handleTransport(_ body: [UInt8], now: UInt64, keyring: LinkKeyring) throws {
        var plain = body
        if opener != nil {
            do {
                plain = try opener!.open(body)
                openedSealed = true
            } catch {
                // The dialer times out waiting for message 2, or refuses, before it has our keys:
                // its REFUSE is in clear (protocol.md §3.1). Until a sealed message has verified,
                // read such a frame as what it is rather than as a MAC failure. A clear REFUSE
                // can only close the link, which a forged RST could do too.
                if !openedSealed, body.first == MessageType.refuse.rawValue,
                   let refusal = try? Refuse.decode(Array(body.dropFirst())) {
                    remoteRefused(refusal)
                    return
                }
                end("a sealed message did not verify; closing the link", refuse: nil, now: now)
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
            try handleRekeyInit(try RekeyInit.decode(payload), now: now, keyring: keyring)
        case .rekeyResponse:
            try handleRekeyResponse(try RekeyResponse.decode(payload), now: now)
        case .rekeyDone:
            var reader = ByteReader(payload)
            handleRekeyDone(epoch: try reader.u8("rekey epoch"))
        default:
            output.append(.deliver(type: type, payload: payload))
            waitsForOwner = true
        }
    }

    // MARK: rekeying (protocol.md §3.7)

    private func sendKey(_ keys: LinkKeys) -> [UInt8] { isInitiator ? keys.tcpInitiatorToResponder : keys.tcpResponderToInitiator }
    private func receiveKey(_ keys: LinkKeys) -> [UInt8] { isInitiator ? keys.tcpResponderToInitiator : keys.tcpInitiatorToResponder }

    private mutating func handleRekeyInit(_ message: RekeyInit, now: UInt64, keyring: LinkKeyring) throws {
        guard let chainingKey else { throw WireError.invalid(what: "rekey on a link without keys") }
        if case .started = rekey {
            // Both sides started at once: the link's dialer wins, the other answers.
            if isInitiator { return }
            rekey = nil
            output.append(.rekeyEnded(failure: nil))
        }
        guard message.epoch == epoch &+ 1, rekey == nil else {
            throw WireError.invalid(what: "rekey epoch \(message.epoch), expected \(epoch &+ 1)")
        }
        var psk: PreSharedKey?
        let id = PSKID(bytes: message.pskId)
        if id != PSKID.zero {
            psk = keyring(id)
            guard psk != nil else {
                sendTransport(MessageType.rekeyResponse.rawValue,
                              RekeyResponse(epoch: message.epoch, status: RekeyResponse.unknownPSK, ephemeral: [UInt8](repeating: 0, count: 32)).encode(), now: now)
                return
            }
        }
        let ours = RekeyEphemeral()
        let next = try Rekey.nextChainingKey(chainingKey, ours: ours, theirPublicKey: message.ephemeral, psk: psk?.key ?? [])
        let keys = LinkKeys.derive(chainingKey: next)
        // Accept the new epoch before telling the initiator, which starts using it at once.
        output.append(.acceptEpoch(message.epoch, keys: keys))
        sendTransport(MessageType.rekeyResponse.rawValue,
                      RekeyResponse(epoch: message.epoch, status: RekeyResponse.accepted, ephemeral: ours.publicKey).encode(), now: now)
        // Everything after the response is sealed with the new key; the initiator's messages
        // switch after its REKEY_DONE.
        sealer = LinkSealer(key: sendKey(keys))
        adopt(chainingKey: next, keys: keys, epoch: message.epoch, psk: psk, now: now)
        rekey = .awaitingDone(epoch: message.epoch, keys: keys)
    }

    private mutating func handleRekeyResponse(_ message: RekeyResponse, now: UInt64) throws {
        guard case let .started(started, ephemeral, psk, _) = rekey, started == message.epoch, let chainingKey else {
            throw WireError.invalid(what: "unexpected rekey response")
        }
        rekey = nil
        guard message.status == RekeyResponse.accepted else {
            output.append(.rekeyEnded(failure: "peer does not hold password id \(psk?.id.description ?? "?")"))
            return
        }
        let next = try Rekey.nextChainingKey(chainingKey, ours: ephemeral, theirPublicKey: message.ephemeral, psk: psk?.key ?? [])
        let keys = LinkKeys.derive(chainingKey: next)
        opener = LinkOpener(key: receiveKey(keys))
        output.append(.acceptEpoch(message.epoch, keys: keys))
        output.append(.sendEpoch(message.epoch, keys: keys))
        sendTransport(MessageType.rekeyDone.rawValue, [message.epoch], now: now)
        sealer = LinkSealer(key: sendKey(keys))
        adopt(chainingKey: next, keys: keys, epoch: message.epoch, psk: psk, now: now)
        output.append(.rekeyEnded(failure: nil))
    }

    private mutating func handleRekeyDone(epoch done: UInt8) {
        guard case let .awaitingDone(waiting, keys) = rekey, waiting == done else { return }
        rekey = nil
        opener = LinkOpener(key: receiveKey(keys))
        output.append(.sendEpoch(done, keys: keys))
        output.append(.rekeyEnded(failure: nil))
    }

    private mutating func adopt(chainingKey newKey: [UInt8], keys: LinkKeys, epoch newEpoch: UInt8, psk: PreSharedKey?, now: UInt64) {
        chainingKey = newKey
        linkKeys = keys
        epoch = newEpoch
        if let psk { pskId = psk.id }
        keysSince = now
    }

    // MARK: writing

    private mutating func end(_ reason: String, refuse code: RefuseCode?, now: UInt64) {
        guard phase != .closing else { return }
        if self.reason == nil { self.reason = reason }
        if let code {
            refuseCode = code
            var body = [MessageType.refuse.rawValue] + Refuse(code: code, text: reason).encode()
            // Sealed once this side has session keys: on an established link, and for the dialer
            // refusing after message 2, whose peer has already switched to them (protocol.md §3.1).
            if sealer != nil { body = sealer!.seal(body) }
            writeFrame(body, now: now)
        }
        phase = .closing
        output.append(.close(reason: self.reason ?? reason, refusal: refuseCode))
    }

    private mutating func sendTransport(_ type: UInt8, _ payload: [UInt8], now: UInt64) {
        guard phase == .established else { return }
        var body = [UInt8]()
        body.reserveCapacity(payload.count + 1)
        body.append(type)
        body.append(contentsOf: payload)
        if sealer != nil { body = sealer!.seal(body) }
        writeFrame(body, now: now)
    }

    private mutating func writeFrame(_ body: [UInt8], now: UInt64) { write(FrameDecoder.frame(body), now: now) }

    private mutating func write(_ bytes: [UInt8], now: UInt64) {
        lastSent = now
        output.append(.write(bytes))
    }

    private mutating func drain() -> [LinkAction] {
        defer { output = [] }
        return output
    }

    private static func elapsed(_ now: UInt64, since start: UInt64) -> UInt64 { now > start ? now - start : 0 }
}
