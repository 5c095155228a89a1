// Link (Sources/WeftRouter/Link.swift) on in-memory channels: the order in which it writes what
// the link state machine and its owner send.
import NIOCore
import NIOEmbedded
import WeftCrypto
import WeftLink
import WeftWire
import XCTest
@testable import WeftRouter

final class LinkOrderTests: XCTestCase {
    /// Answers every gossip message once with one of its own, as a router forwarding or
    /// answering a digest does, from inside the link's delivery.
    private final class Replier: LinkDelegate {
        let psk: PreSharedKey
        var received: [[UInt8]] = []
        var replies = 0
        init(psk: PreSharedKey) { self.psk = psk }
        func linkAuthenticated(_ link: Link) -> Refuse? { nil }
        func linkEstablished(_ link: Link) {}
        func link(_ link: Link, received type: UInt8, payload: [UInt8]) {
            received.append(payload)
            if payload.first == 0xFF {
                link.fail("malformed gossip: test", refuse: .protocolError)
            } else if payload.first != 0xEE {
                replies += 1
                link.send(type: MessageType.gossip.rawValue, payload: [0xEE, UInt8(replies)])
            }
        }
        func psk(for id: PSKID) -> PreSharedKey? { id == psk.id ? psk : nil }
        func link(_ link: Link, acceptEpoch epoch: UInt8, keys: LinkKeys) {}
        func link(_ link: Link, sendEpoch epoch: UInt8, keys: LinkKeys) {}
        func linkRekeyEnded(_ link: Link, failure: String?) {}
    }

    /// Router n's identity key; its hello carries the name the key gives (docs/protocol.md §1).
    private static func identity(_ n: UInt8) -> IdentityKey { try! IdentityKey(privateKey: [UInt8](repeating: n, count: 32)) }

    private static func hello(_ n: UInt8) -> Hello {
        Hello(name: PeerName(bytes: identity(n).peerNameBytes), nickname: "host-\(n)", uid: UInt64(n), connectionId: UInt64(n) << 8,
              gossipPort: 6783, sleevePort: 6783, shortId: UInt16(n), trustsRemote: false, fastdpCapable: false, overlays: 1, ciphers: 1)
    }

    /// Everything `from` wrote so far, fed to `to` in one read.
    private func deliver(_ from: EmbeddedChannel, to link: Link) throws {
        var all = from.allocator.buffer(capacity: 0)
        while var piece = try from.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&piece) }
        if all.readableBytes > 0 { link.receive(&all) }
    }

    /// #12 at 100 routers: the dialer read a gossip message and the REKEY_RESP after it in one
    /// read, switched to the new key, and its answer to the gossip, sent from inside the
    /// delivery, went out sealed with the new key ahead of REKEY_DONE (old key): the responder,
    /// still on the old key until that DONE, closed the link ("a sealed message did not
    /// verify"). What the owner sends while a batch of actions is carried out goes after it.
    func testAnAnswerSentDuringARekeyBatchDoesNotOvertakeRekeyDone() throws {
        let (dialer, responder, channelA, channelB, delegateA, delegateB) = try establishedPair()
        responder.send(type: MessageType.gossip.rawValue, payload: [1])  // under the old key
        XCTAssertTrue(dialer.startRekey(psk: nil))
        try deliver(channelA, to: responder)  // REKEY_INIT: the responder answers and switches
        try deliver(channelB, to: dialer)     // the gossip and REKEY_RESP in one read
        try deliver(channelA, to: responder)  // REKEY_DONE and the dialer's answer
        try deliver(channelB, to: dialer)
        XCTAssertNil(responder.reason, "the responder closed the link")
        XCTAssertNil(dialer.reason)
        XCTAssertEqual(delegateB.received, [[0xEE, 1]], "the dialer's answer arrived")
        // Both ends are on the new keys: another exchange goes through.
        dialer.send(type: MessageType.gossip.rawValue, payload: [2])
        try deliver(channelA, to: responder)
        try deliver(channelB, to: dialer)
        XCTAssertNil(responder.reason)
        XCTAssertEqual(delegateA.received.last, [0xEE, 1])
        _ = try channelA.finish()
        _ = try channelB.finish()
    }

    /// The owner closes the link from inside such a batch (malformed gossip): its REFUSE, sealed
    /// with the new key, goes after REKEY_DONE, so the peer reads the refusal, not a MAC failure.
    func testARefusalFromInsideARekeyBatchIsReadByThePeer() throws {
        let (dialer, responder, channelA, channelB, delegateA, delegateB) = try establishedPair()
        defer { withExtendedLifetime((delegateA, delegateB)) {} }  // links hold their delegates weakly
        responder.send(type: MessageType.gossip.rawValue, payload: [0xFF])
        XCTAssertTrue(dialer.startRekey(psk: nil))
        try deliver(channelA, to: responder)
        try deliver(channelB, to: dialer)     // the bad gossip and REKEY_RESP in one read
        XCTAssertEqual(dialer.reason, "malformed gossip: test")
        try deliver(channelA, to: responder)  // REKEY_DONE, then the REFUSE
        XCTAssertEqual(responder.refuseCode, .protocolError, responder.reason ?? "")
        XCTAssertEqual(responder.reason, "refused by remote: malformed gossip: test")
    }

    private func establishedPair() throws -> (Link, Link, EmbeddedChannel, EmbeddedChannel, Replier, Replier) {
        let psk = PreSharedKey(key: [UInt8](repeating: 0x11, count: 32))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 6783)
        let (channelA, channelB) = (EmbeddedChannel(), EmbeddedChannel())
        try channelA.connect(to: address).wait()
        try channelB.connect(to: address).wait()
        let (delegateA, delegateB) = (Replier(psk: psk), Replier(psk: psk))
        let dialer = Link(direction: .outbound, channel: channelA, targetAddress: nil, localHello: Self.hello(1), localPSK: psk,
                          identity: Self.identity(1))
        let responder = Link(direction: .inbound, channel: channelB, targetAddress: nil, localHello: Self.hello(2), localPSK: psk,
                             identity: Self.identity(2))
        dialer.delegate = delegateA
        responder.delegate = delegateB
        dialer.start()
        responder.start()
        for _ in 0..<10 where !(dialer.isEstablished && responder.isEstablished) {
            try deliver(channelA, to: responder)
            try deliver(channelB, to: dialer)
        }
        XCTAssertTrue(dialer.isEstablished && responder.isEstablished)
        return (dialer, responder, channelA, channelB, delegateA, delegateB)
    }
}
