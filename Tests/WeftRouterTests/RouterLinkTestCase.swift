// The set-up the router's link tests share (RevocationLinkTests, RetiringPasswordLinkTests): a
// real Router owning one end of an in-memory link (EmbeddedChannel), a far end that records what
// it receives, router n's identity key, name and hello, and a dial that runs the handshake.
import Foundation
import NIOCore
import NIOEmbedded
import WeftCrypto
import WeftLink
import WeftWire
import XCTest
@testable import WeftRouter

class RouterLinkTestCase: XCTestCase {
    /// The far end: records what it receives.
    final class Peer: LinkDelegate {
        let psk: PreSharedKey
        var received: [(type: UInt8, payload: [UInt8])] = []
        init(psk: PreSharedKey) { self.psk = psk }
        func linkAuthenticated(_ link: Link) -> Refuse? { nil }
        func linkEstablished(_ link: Link) {}
        func link(_ link: Link, received type: UInt8, payload: [UInt8]) { received.append((type, payload)) }
        func psk(for id: PSKID) -> PreSharedKey? { id == psk.id ? psk : nil }
        func link(_ link: Link, acceptEpoch epoch: UInt8, keys: LinkKeys) {}
        func link(_ link: Link, sendEpoch epoch: UInt8, keys: LinkKeys) {}
        func linkRekeyEnded(_ link: Link, failure: String?) {}
    }

    static func identity(_ n: UInt8) -> IdentityKey { try! IdentityKey(privateKey: [UInt8](repeating: n, count: 32)) }
    static func name(_ n: UInt8) -> PeerName { PeerName(bytes: identity(n).peerNameBytes) }

    static func hello(_ n: UInt8) -> Hello {
        Hello(name: name(n), nickname: "host-\(n)", uid: UInt64(n), connectionId: UInt64(n) << 8,
              gossipPort: 6783, sleevePort: 6783, shortId: UInt16(n), trustsRemote: false, fastdpCapable: false, overlays: 1, ciphers: 1)
    }

    /// Hands everything `from` wrote to `link` in one read.
    func deliver(_ from: EmbeddedChannel, to link: Link) throws {
        var all = from.allocator.buffer(capacity: 0)
        while var piece = try from.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&piece) }
        if all.readableBytes > 0 { link.receive(&all) }
    }

    /// A peer of key `n` (recording into `peer`, a new one if nil) dials `router`, whose key is 2,
    /// under `psk`; the handshake runs until both ends are established or the router refused, and
    /// a refusal is handed to the dialer. Runs on the router's loop.
    func dial(_ router: Router, from n: UInt8, psk: PreSharedKey, peer: Peer? = nil)
        throws -> (dialer: Link, responder: Link, a: EmbeddedChannel, b: EmbeddedChannel, peer: Peer) {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 6783)
        let (a, b) = (EmbeddedChannel(), EmbeddedChannel())
        try a.connect(to: address).wait()
        try b.connect(to: address).wait()
        let dialer = Link(direction: .outbound, channel: a, targetAddress: nil, localHello: Self.hello(n), localPSK: psk, identity: Self.identity(n))
        let responder = Link(direction: .inbound, channel: b, targetAddress: nil, localHello: Self.hello(2), localPSK: psk, identity: Self.identity(2))
        let peer = peer ?? Peer(psk: psk)
        dialer.delegate = peer
        responder.delegate = router
        router.links[ObjectIdentifier(responder)] = responder
        dialer.start()
        responder.start()
        for _ in 0..<10 where !(dialer.isEstablished && responder.isEstablished) && responder.reason == nil {
            try deliver(a, to: responder)
            try deliver(b, to: dialer)
        }
        if !responder.isEstablished { try deliver(b, to: dialer) }
        return (dialer, responder, a, b, peer)
    }
}
