// Pinning decisions in memory: first sight, same key, other key, revoked; each refusal reported once.
import XCTest
import WeftWire
@testable import WeftMesh

final class IdentityPinsTests: XCTestCase {
    let peer = PeerName("02:00:00:00:00:01")!
    let other = PeerName("02:00:00:00:00:02")!
    let keyA = [UInt8](repeating: 0xA, count: 32)
    let keyB = [UInt8](repeating: 0xB, count: 32)

    func testFirstSightPinsThenSameKeyIsAccepted() {
        var pins = IdentityPins()
        XCTAssertEqual(pins.decide(name: peer, key: keyA), .firstSight)
        XCTAssertTrue(pins.keys.isEmpty, "decide changes nothing")
        XCTAssertEqual(pins.observe(name: peer, key: keyA).decision, .firstSight)
        XCTAssertEqual(pins.keys[peer], keyA)
        XCTAssertEqual(pins.observe(name: peer, key: keyA).decision, .sameKey)
        XCTAssertFalse(pins.observe(name: peer, key: keyA).firstReport)
    }

    func testOtherKeyIsRefusedAndReportedOnceAndThePinStays() {
        var pins = IdentityPins()
        _ = pins.observe(name: peer, key: keyA)
        let first = pins.observe(name: peer, key: keyB)
        XCTAssertEqual(first.decision, .otherKey(pinned: keyA))
        XCTAssertTrue(first.firstReport)
        let again = pins.observe(name: peer, key: keyB)
        XCTAssertEqual(again.decision, .otherKey(pinned: keyA))
        XCTAssertFalse(again.firstReport, "logged once")
        XCTAssertEqual(pins.keys[peer], keyA, "a refused key never replaces the pin")
        XCTAssertEqual(pins.observe(name: peer, key: keyA).decision, .sameKey, "the real owner stays accepted")
        // Pins are per name: the same key under another name is a first sight of that name.
        XCTAssertEqual(pins.observe(name: other, key: keyB).decision, .firstSight)
    }

    func testRevokedKeyIsRefusedWhateverWasPinned() {
        var pins = IdentityPins()
        _ = pins.observe(name: peer, key: keyA)
        pins.revoke(keyA)
        let first = pins.observe(name: peer, key: keyA)
        XCTAssertEqual(first.decision, .revoked)
        XCTAssertTrue(first.firstReport)
        XCTAssertFalse(pins.observe(name: peer, key: keyA).firstReport)
        XCTAssertEqual(pins.decide(name: other, key: keyA), .revoked, "not even as a first sight")
        XCTAssertEqual(pins.observe(name: other, key: keyA).decision, .revoked)
        XCTAssertNil(pins.keys[other], "a revoked key is never pinned")
        pins.revoke(keyA)
        XCTAssertEqual(pins.revoked, [keyA])
    }

    func testEqualityIgnoresWhatWasReported() {
        var a = IdentityPins(keys: [peer: keyA])
        let b = IdentityPins(keys: [peer: keyA])
        _ = a.observe(name: peer, key: keyB)
        XCTAssertEqual(a, b)
    }
}
