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

/// `IdentityPins.check`: the derivation first, then the pins; the pinned key needs no hash.
final class IdentityPinCheckTests: XCTestCase {
    let peer = PeerName("02:00:00:00:00:01")!
    let keyA = [UInt8](repeating: 0xA, count: 32)
    let keyB = [UInt8](repeating: 0xB, count: 32)

    func testCheckPinsOnFirstSightAndSkipsTheHashForThePinnedKey() {
        var pins = IdentityPins()
        XCTAssertEqual(pins.check(name: peer, key: keyA) { self.peer }, .accepted(firstSight: true))
        XCTAssertEqual(pins.keys[peer], keyA)
        XCTAssertEqual(pins.check(name: peer, key: keyA) { XCTFail("no derivation for the pinned key"); return self.peer },
                       .accepted(firstSight: false))
    }

    func testCheckRefusesAKeyThatDoesNotDeriveTheNameOncePerName() {
        var pins = IdentityPins()
        let elsewhere = PeerName("02:00:00:00:00:99")!
        XCTAssertEqual(pins.check(name: peer, key: keyA) { elsewhere }, .refused(.nameNotDerived, firstReport: true))
        XCTAssertEqual(pins.check(name: peer, key: keyB) { elsewhere }, .refused(.nameNotDerived, firstReport: false))
        XCTAssertTrue(pins.keys.isEmpty, "nothing pinned")
    }

    func testCheckRefusesAnotherKeyForAPinnedNameAndARevokedKey() {
        var pins = IdentityPins()
        _ = pins.check(name: peer, key: keyA) { self.peer }
        XCTAssertEqual(pins.check(name: peer, key: keyB) { self.peer }, .refused(.otherKey(pinned: keyA), firstReport: true))
        XCTAssertEqual(pins.check(name: peer, key: keyB) { self.peer }, .refused(.otherKey(pinned: keyA), firstReport: false))
        pins.revoke(keyA)
        XCTAssertEqual(pins.check(name: peer, key: keyA) { self.peer }, .refused(.revoked, firstReport: true),
                       "a revoked key is refused even where it is pinned")
    }

    func testReportsAreBounded() {
        var pins = IdentityPins()
        let elsewhere = PeerName("02:00:00:00:00:99")!
        var reported = 0
        for i in 0..<(IdentityPins.maxReports + 10) {
            if case .refused(_, true) = pins.check(name: PeerName(value: 0x0200_0000_0000 + UInt64(i)), key: keyA, derivedName: { elsewhere }) {
                reported += 1
            }
        }
        XCTAssertEqual(reported, IdentityPins.maxReports, "refused beyond the cap, but no longer reported")
    }
}
