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

final class RetiringPasswordLinkTests: RouterLinkTestCase {
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
