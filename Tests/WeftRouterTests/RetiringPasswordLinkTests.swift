// REFUSE 14 on real Links (in-memory channels) with the router as the responder's owner
// (docs/protocol.md §3.8, §3.11): a PASSWORD_USE with the pinned-only flag marks the old password
// in the router's keyring (saved); then a fresh key under that password is refused with REFUSE 14,
// which the dialer reads, and is not pinned, while the key pinned before is admitted.
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import WeftCrypto
import WeftLink
import WeftMesh
import WeftWire
import XCTest
@testable import WeftRouter

final class RetiringPasswordLinkTests: XCTestCase {
    /// The far end: records what it receives.
    private final class Peer: LinkDelegate {
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

    private static func identity(_ n: UInt8) -> IdentityKey { try! IdentityKey(privateKey: [UInt8](repeating: n, count: 32)) }
    private static func name(_ n: UInt8) -> PeerName { PeerName(bytes: identity(n).peerNameBytes) }

    private static func hello(_ n: UInt8) -> Hello {
        Hello(name: name(n), nickname: "host-\(n)", uid: UInt64(n), connectionId: UInt64(n) << 8,
              gossipPort: 6783, sleevePort: 6783, shortId: UInt16(n), trustsRemote: false, fastdpCapable: false, overlays: 1, ciphers: 1)
    }

    private func deliver(_ from: EmbeddedChannel, to link: Link) throws {
        var all = from.allocator.buffer(capacity: 0)
        while var piece = try from.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&piece) }
        if all.readableBytes > 0 { link.receive(&all) }
    }

    /// A peer of key `n` dials router 2 (`router`) under `psk`; the handshake runs to its end.
    private func dial(_ router: Router, from n: UInt8, psk: PreSharedKey)
        throws -> (dialer: Link, responder: Link, a: EmbeddedChannel, b: EmbeddedChannel, peer: Peer) {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 6783)
        let (a, b) = (EmbeddedChannel(), EmbeddedChannel())
        try a.connect(to: address).wait()
        try b.connect(to: address).wait()
        let dialer = Link(direction: .outbound, channel: a, targetAddress: nil, localHello: Self.hello(n), localPSK: psk, identity: Self.identity(n))
        let responder = Link(direction: .inbound, channel: b, targetAddress: nil, localHello: Self.hello(2), localPSK: psk, identity: Self.identity(2))
        let peer = Peer(psk: psk)
        dialer.delegate = peer
        responder.delegate = router
        router.links[ObjectIdentifier(responder)] = responder
        dialer.start()
        responder.start()
        for _ in 0..<10 where !(dialer.isEstablished && responder.isEstablished) && responder.reason == nil {
            try deliver(a, to: responder)
            try deliver(b, to: dialer)
        }
        try deliver(b, to: dialer)
        return (dialer, responder, a, b, peer)
    }

    func testFreshKeyUnderAPasswordRetiredByARevocationIsRefusedWith14() throws {
        let dir = NSTemporaryDirectory() + "weft-retiring-link-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let old = PreSharedKey(key: [UInt8](repeating: 0x11, count: 32))
        let new = PreSharedKey(key: [UInt8](repeating: 0x22, count: 32))
        let config = RouterConfig(name: Self.name(2), nickname: "host-2", port: 6783, trustedSubnets: [], psk: nil, socketPath: "/nonexistent",
                                  dataDir: dir, mtu: nil, fastdpEnabled: false, initialPeers: [], identity: Self.identity(2))
        let keyring = try XCTUnwrap(try Keyring.load(dataDir: dir, launchPSK: old, log: { _ in }))
        let router = Router(config: config, keyring: keyring, logger: Logger(label: "test"))
        defer {
            try? router.loop.submit { router.shutdown(because: "test") }.wait()
            Thread.sleep(forTimeInterval: 0.3)
            try? router.group.syncShutdownGracefully()
        }
        try router.loop.submit {
            try router.loadPins()
            try router.loadRevocations()

            // Before any revocation a fresh key joins under the old password (and is pinned).
            let first = try self.dial(router, from: 1, psk: old)
            XCTAssertTrue(first.responder.isEstablished, first.responder.reason ?? "")

            // Peer 1 hands on the rotation of a revocation: offer, then PASSWORD_USE with the flag.
            first.dialer.send(type: MessageType.passwordOffer.rawValue, payload: PasswordOffer(psk: new.key).encode())
            first.dialer.send(type: MessageType.passwordUse.rawValue,
                              payload: PasswordUse(newId: new.id.bytes, oldId: old.id.bytes, graceSeconds: 600, pinnedOnly: true).encode())
            try self.deliver(first.a, to: first.responder)
            XCTAssertNil(first.responder.reason)
            XCTAssertEqual(keyring.active?.id, new.id)
            XCTAssertTrue(keyring.isPinnedOnly(old.id))
            XCTAssertFalse(keyring.isPinnedOnly(new.id))

            // A fresh key (5) under the old password: REFUSE 14, read by the dialer, nothing pinned.
            let fresh = try self.dial(router, from: 5, psk: old)
            XCTAssertEqual(fresh.responder.refuseCode, .retiringPasswordUnknownKey, fresh.responder.reason ?? "")
            XCTAssertEqual(fresh.dialer.refuseCode, .retiringPasswordUnknownKey, fresh.dialer.reason ?? "")
            let fingerprint = IdentityKey.fingerprint(publicKey: Self.identity(5).publicKey)
            XCTAssertTrue(fresh.dialer.reason?.contains("this password is being retired; join with the current one (your identity \(fingerprint) is not known here)") == true,
                          fresh.dialer.reason ?? "")
            XCTAssertEqual(router.identityPins.pins.decide(name: Self.name(5), key: Self.identity(5).publicKey), .firstSight, "not pinned")
            // Key 1, pinned before, comes back under the old password: admitted, and caught up with
            // a PASSWORD_USE that keeps the flag.
            let again = try self.dial(router, from: 1, psk: old)
            XCTAssertTrue(again.responder.isEstablished, again.responder.reason ?? "")
            let catchUp = try XCTUnwrap(again.peer.received.first { $0.type == MessageType.passwordUse.rawValue })
            XCTAssertEqual(try PasswordUse.decode(catchUp.payload).pinnedOnly, true)
            // Let the catch-up's rekey end (the peer lacks the new password: it refuses it), so no
            // rekey waiter outlives the router.
            for _ in 0..<4 {
                try self.deliver(again.b, to: again.dialer)
                try self.deliver(again.a, to: again.responder)
            }
            // The fresh key under the new password is admitted.
            let current = try self.dial(router, from: 5, psk: new)
            XCTAssertTrue(current.responder.isEstablished, current.responder.reason ?? "")
            for link in [first, fresh, again, current] {
                _ = try? link.a.finish()
                _ = try? link.b.finish()
            }
        }.wait()
        let saved = try XCTUnwrap(try Keyring.read(path: dir + "/keyring.json"))
        XCTAssertEqual(saved.entries.first { $0.id == old.id.description }?.pinnedOnly, true, "the mark is saved")
    }
}
