// Admission under a password retired because of a revocation (RetiringPassword, REFUSE 14), in
// memory: a pinned key is admitted, an unknown one refused, an unmarked password admits anyone.
import XCTest
import WeftWire
@testable import WeftMesh

final class RetiringPasswordTests: XCTestCase {
    let peer = PeerName("02:00:00:00:00:01")!
    let known = [UInt8](repeating: 0xA, count: 32)
    let fresh = [UInt8](repeating: 0xB, count: 32)

    private func refusal(pinnedOnly: Bool, key: [UInt8], pins: IdentityPins) -> Refuse? {
        RetiringPassword.refusal(pinnedOnly: pinnedOnly, pin: pins.decide(name: peer, key: key), fingerprint: "F")
    }

    func testPinnedKeyIsAdmittedUnderAPinnedOnlyPassword() {
        let pins = IdentityPins(keys: [peer: known])
        XCTAssertNil(refusal(pinnedOnly: true, key: known, pins: pins))
    }

    func testUnknownKeyIsRefusedWith14AndNothingIsPinned() {
        let pins = IdentityPins(keys: [:])
        let refuse = refusal(pinnedOnly: true, key: fresh, pins: pins)
        XCTAssertEqual(refuse?.code, .retiringPasswordUnknownKey)
        XCTAssertEqual(refuse?.code.rawValue, 14)
        XCTAssertEqual(refuse?.text, "this password is being retired; join with the current one (your identity F is not known here)")
        XCTAssertTrue(pins.keys.isEmpty)
    }

    func testAnUnmarkedPasswordAdmitsAnUnknownKey() {
        XCTAssertNil(refusal(pinnedOnly: false, key: fresh, pins: IdentityPins()))
    }

    func testRevokedAndOtherKeysAreLeftToThePinCheck() {
        // REFUSE 13 and 12 say more than 14; the pin check that follows sends them.
        XCTAssertNil(refusal(pinnedOnly: true, key: fresh, pins: IdentityPins(revoked: [fresh])))
        XCTAssertNil(refusal(pinnedOnly: true, key: fresh, pins: IdentityPins(keys: [peer: known])))
    }
}
