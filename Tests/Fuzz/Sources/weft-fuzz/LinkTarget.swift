// The gossip link's state machine (WeftLink/LinkStateMachine.swift) fed arbitrary byte streams.
// Mode 0: a fresh acceptor (with or without a password) reads the bytes from its first one:
// preamble, hello, Noise messages, refusals. Mode 1: a link established with a real
// version-2 handshake (XXpsk0, docs/protocol.md §3.10) once, copied for each input; the input is a script of what its peer sends: sealed
// messages of any type and payload (rekeying, refusals, password messages), raw bytes spliced
// into the stream, clock ticks and rekeys from either end. Every message the link delivers must
// be one its peer sent, in order: garbage may close the link, never forge a message.
import WeftCrypto
import WeftLink
import WeftWire

let linkPSK = PreSharedKey(key: [UInt8](repeating: 0x11, count: 32))
let linkStart: UInt64 = 1_000_000_000

/// Router n's identity key; its hello carries the name the key gives, as the handshake checks.
func linkIdentity(_ n: UInt8) -> IdentityKey { try! IdentityKey(privateKey: [UInt8](repeating: n, count: 32)) }

func linkHello(_ n: UInt8) -> Hello {
    Hello(name: PeerName(bytes: linkIdentity(n).peerNameBytes), nickname: "host-\(n)", uid: UInt64(n), connectionId: UInt64(n) << 8,
          gossipPort: 6783, sleevePort: 6783, shortId: UInt16(n), trustsRemote: false, fastdpCapable: false, overlays: 1, ciphers: 1)
}

/// One end of the in-memory link: its machine, what it wrote and not yet delivered, what it delivered.
struct LinkEnd {
    var machine: LinkStateMachine
    var outbox: [UInt8] = []
    var delivered: [(UInt8, [UInt8])] = []
    var closed = false

    init(initiator: Bool, psk: PreSharedKey?) {
        machine = LinkStateMachine(initiator: initiator, localHello: linkHello(initiator ? 1 : 2), localPSK: psk,
                                   identity: linkIdentity(initiator ? 1 : 2), now: linkStart)
    }

    mutating func perform(_ actions: [LinkAction], now: UInt64) {
        for action in actions {
            switch action {
            case .write(let bytes): outbox += bytes
            case .authenticate: perform(machine.admit(nil, now: now, keyring: { $0 == linkPSK.id ? linkPSK : nil }), now: now)
            case .deliver(let type, let payload): delivered.append((type, payload))
            case .close: closed = true
            default: break
            }
        }
    }

    /// As Link does: after each delivery the machine waits for its owner to resume it.
    mutating func receive(_ bytes: [UInt8], now: UInt64) {
        perform(machine.receive(bytes, now: now, keyring: { $0 == linkPSK.id ? linkPSK : nil }), now: now)
        while machine.waitsForOwner && !closed {
            perform(machine.resume(now: now, keyring: { $0 == linkPSK.id ? linkPSK : nil }), now: now)
        }
    }
}

/// Delivers what `from` wrote to `to`.
func deliver(_ from: inout LinkEnd, _ to: inout LinkEnd, now: UInt64) {
    guard !from.outbox.isEmpty else { return }
    let bytes = from.outbox
    from.outbox = []
    to.receive(bytes, now: now)
}

/// The established pair every mode-1 input starts from: the dialer is the peer, the acceptor
/// the link under test.
nonisolated(unsafe) let establishedLink: (peer: LinkEnd, link: LinkEnd) = {
    var peer = LinkEnd(initiator: true, psk: linkPSK)
    var link = LinkEnd(initiator: false, psk: linkPSK)
    peer.perform(peer.machine.start(now: linkStart), now: linkStart)
    link.perform(link.machine.start(now: linkStart), now: linkStart)
    for _ in 0..<10 {
        deliver(&peer, &link, now: linkStart)
        deliver(&link, &peer, now: linkStart)
    }
    precondition(peer.machine.isEstablished && link.machine.isEstablished, "the fuzz link did not establish")
    return (peer, link)
}()

/// Types the link handles itself rather than delivering.
let linkInternalTypes: Set<UInt8> = [MessageType.keepalive, .refuse, .rekeyInit, .rekeyResponse, .rekeyDone].map(\.rawValue).reduce(into: []) { $0.insert($1) }

let linkTarget = FuzzTarget(name: "link", run: { data in
    var input = FuzzInput(data)
    var now = linkStart
    if input.u8() & 1 == 0 {
        var link = LinkEnd(initiator: false, psk: input.u8() & 1 == 0 ? linkPSK : nil)
        link.perform(link.machine.start(now: now), now: now)
        while !input.isAtEnd && !link.closed { link.receive(input.take(Int(input.u8()) + 1), now: now) }
        return
    }
    var (peer, link) = establishedLink
    var sent: [(UInt8, [UInt8])] = []
    while !input.isAtEnd && !link.closed {
        switch input.u8() % 6 {
        case 0, 1:
            let type = input.u8()
            let payload = input.take(Int(input.u16() & 0x3FF))
            let before = peer.outbox.count
            peer.perform(peer.machine.send(type: type, payload: payload, now: now), now: now)
            if peer.outbox.count > before, !linkInternalTypes.contains(type) { sent.append((type, payload)) }
        case 2:
            peer.outbox += input.take(Int(input.u8()) + 1)
        case 3:
            now += UInt64(input.u8()) * 250_000_000
            peer.perform(peer.machine.tick(now: now), now: now)
            link.perform(link.machine.tick(now: now), now: now)
        case 4:
            if input.u8() & 1 == 0 {
                peer.perform(peer.machine.startRekey(psk: nil, now: now) ?? [], now: now)
            } else {
                link.perform(link.machine.startRekey(psk: nil, now: now) ?? [], now: now)
            }
        default:
            deliver(&link, &peer, now: now)
        }
        deliver(&peer, &link, now: now)
    }
    for (index, message) in link.delivered.enumerated() {
        expect(index < sent.count && sent[index] == message, "the link delivered message \(index) (type \(message.0)) its peer never sent")
    }
}, seeds: {
    // Scripts for mode 1: a gossip message, a keepalive, a rekey each way, a password offer.
    let gossip = TopologyUpdate(peers: samplePeers).encode()
    let offer = PasswordOffer(psk: [UInt8](repeating: 0x22, count: 32)).encode()
    func send(_ type: MessageType, _ payload: [UInt8]) -> [UInt8] { [0, type.rawValue, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload }
    let handshake = Preamble(hasPassword: true, pskId: linkPSK.id.bytes).encode()
    // A real message 1 (empty payload, as version 2 sends it): the acceptor reads it and answers
    // with message 2; message 3 depends on that answer's ephemeral key, so mode 0 goes no further.
    var dialer = try! NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: true,
                                          prologue: LinkPrologue.bytes(version: LinkVersion.maximum, pskId: linkPSK.id), psk: linkPSK.key,
                                          staticPrivateKey: linkIdentity(1).privateKey)
    let message1 = FrameDecoder.frame([MessageType.handshakeInit.rawValue] + (try! dialer.writeMessage(payload: [])))
    return [[1] + send(.gossip, gossip) + send(.keepalive, []) + [4, 0, 5, 4, 1, 5] + send(.passwordOffer, offer) + [3, 40],
            [1] + send(.gossipDigest, [1, 0, 0]) + [2, 3, 1, 2, 3],
            [0, 0, UInt8(handshake.count - 1)] + handshake + [UInt8(message1.count - 1)] + message1,
            [0, 1, 14] + Preamble(hasPassword: false, pskId: PSKID.zero.bytes).encode() + [40] + FrameDecoder.frame([MessageType.helloPlain.rawValue] + linkHello(3).encode())]
})
