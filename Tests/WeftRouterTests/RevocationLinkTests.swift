// REVOCATIONS on a real Link (in-memory channels) with the router as its owner (docs/protocol.md
// §3.11): the router sends its set first on a new link; a malformed message closes the link with
// REFUSE 7; a record that revokes the peer's own key closes that link with REFUSE 13, which the
// peer reads, and is saved.
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

final class RevocationLinkTests: RouterLinkTestCase {
    private func record(_ n: UInt8, by: UInt8 = 9) -> Revocation {
        Revocation(key: Self.identity(n).publicKey, name: Self.name(n), nickname: "host-\(n)", revokedBy: Self.name(by), at: 1_800_000_000)
    }

    /// Router 2 (`router`) and a peer, router 1, that dials it: established, the router owning
    /// its end. Runs on the router's loop.
    private func connect(_ router: Router, peer: Peer, psk: PreSharedKey) throws -> (dialer: Link, responder: Link, a: EmbeddedChannel, b: EmbeddedChannel) {
        let link = try dial(router, from: 1, psk: psk, peer: peer)
        XCTAssertTrue(link.dialer.isEstablished && link.responder.isEstablished)
        return (link.dialer, link.responder, link.a, link.b)
    }

    func testRevocationsOnTheLink() throws {
        let dir = NSTemporaryDirectory() + "weft-revocation-link-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let psk = PreSharedKey(key: [UInt8](repeating: 0x11, count: 32))
        let config = RouterConfig(name: Self.name(2), nickname: "host-2", port: 6783, trustedSubnets: [], psk: nil, socketPath: "/nonexistent",
                                  dataDir: dir, mtu: nil, fastdpEnabled: false, initialPeers: [], identity: Self.identity(2))
        let router = Router(config: config, keyring: try Keyring.load(dataDir: dir, launchPSK: psk, log: { _ in }), logger: Logger(label: "test"))
        defer {
            try? router.loop.submit { router.shutdown(because: "test") }.wait()
            Thread.sleep(forTimeInterval: 0.3)
            try? router.group.syncShutdownGracefully()
        }
        try router.loop.submit {
            try router.loadPins()
            try router.loadRevocations()

            // Malformed (a count beyond the bytes): REFUSE 7, as malformed gossip.
            let peer = Peer(psk: psk)
            let first = try self.connect(router, peer: peer, psk: psk)
            XCTAssertFalse(peer.received.contains { $0.type == MessageType.revocations.rawValue }, "an empty set is not sent")
            first.dialer.send(type: MessageType.revocations.rawValue, payload: [0, 5])
            try self.deliver(first.a, to: first.responder)
            XCTAssertEqual(first.responder.refuseCode, .protocolError)
            XCTAssertTrue(first.responder.reason?.hasPrefix("malformed revocations") == true, first.responder.reason ?? "")

            // A record of someone else, then one of the peer's own key: its link closes with REFUSE 13.
            let second = try self.connect(router, peer: peer, psk: psk)
            second.dialer.send(type: MessageType.revocations.rawValue, payload: RevocationList(records: [self.record(3)]).encode())
            try self.deliver(second.a, to: second.responder)
            XCTAssertNil(second.responder.reason, "a record of another key leaves the link alone")
            second.dialer.send(type: MessageType.revocations.rawValue, payload: RevocationList(records: [self.record(1)]).encode())
            try self.deliver(second.a, to: second.responder)
            XCTAssertEqual(second.responder.refuseCode, .revoked, second.responder.reason ?? "")
            try self.deliver(second.b, to: second.dialer)
            XCTAssertEqual(second.dialer.refuseCode, .revoked)
            XCTAssertTrue(second.dialer.reason?.contains("is revoked in this mesh") == true, second.dialer.reason ?? "")
            XCTAssertEqual(router.revocationList().map(\.name), [Self.name(3).description, Self.name(1).description].sorted())
            _ = try? first.a.finish()
            _ = try? first.b.finish()
            _ = try? second.a.finish()
            _ = try? second.b.finish()
        }.wait()
        XCTAssertEqual(try RevocationStore.load(dataDir: dir).set.count, 2, "saved")

        // A router holding revocations sends them first on a new link (here: the record of key 3).
        let other = Router(config: config, keyring: try Keyring.load(dataDir: dir, launchPSK: psk, log: { _ in }), logger: Logger(label: "test"))
        defer {
            try? other.loop.submit { other.shutdown(because: "test") }.wait()
            Thread.sleep(forTimeInterval: 0.3)
            try? other.group.syncShutdownGracefully()
        }
        try other.loop.submit {
            try other.loadPins()
            try other.loadRevocations()
            XCTAssertEqual(other.pinRefusal(name: Self.name(1), key: Self.identity(1).publicKey, address: "x")?.code, .revoked)
            let peer = Peer(psk: psk)
            // Key 1 is revoked now, so the link is refused at admission; a peer of key 4 instead.
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: 6783)
            let (a, b) = (EmbeddedChannel(), EmbeddedChannel())
            try a.connect(to: address).wait()
            try b.connect(to: address).wait()
            let dialer = Link(direction: .outbound, channel: a, targetAddress: nil, localHello: Self.hello(4), localPSK: psk, identity: Self.identity(4))
            let responder = Link(direction: .inbound, channel: b, targetAddress: nil, localHello: Self.hello(2), localPSK: psk, identity: Self.identity(2))
            dialer.delegate = peer
            responder.delegate = other
            other.links[ObjectIdentifier(responder)] = responder
            dialer.start()
            responder.start()
            for _ in 0..<10 {
                try self.deliver(a, to: responder)
                try self.deliver(b, to: dialer)
            }
            XCTAssertTrue(dialer.isEstablished && responder.isEstablished, responder.reason ?? "")
            XCTAssertEqual(peer.received.first?.type, MessageType.revocations.rawValue, "REVOCATIONS before the gossip")
            let sent = try RevocationList.decode(peer.received.first?.payload ?? [])
            XCTAssertEqual(Set(sent.records.map(\.name)), [Self.name(1), Self.name(3)])
            _ = try? a.finish()
            _ = try? b.finish()
        }.wait()
    }
}
