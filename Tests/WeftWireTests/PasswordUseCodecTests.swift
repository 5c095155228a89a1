// PASSWORD_USE on the wire (docs/protocol.md §3.8): new id, old id, grace, flags; exactly 21
// bytes, bit 0 of the flags the pinned-only mark of a revocation's rotation (§3.11).
import XCTest
@testable import WeftWire

final class PasswordUseCodecTests: XCTestCase {
    let newId: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
    let oldId: [UInt8] = [8, 7, 6, 5, 4, 3, 2, 1]

    func testRoundTripWithAndWithoutThePinnedOnlyFlag() throws {
        for pinnedOnly in [false, true] {
            let use = PasswordUse(newId: newId, oldId: oldId, graceSeconds: 600, pinnedOnly: pinnedOnly)
            let bytes = use.encode()
            XCTAssertEqual(bytes, newId + oldId + [0, 0, 2, 0x58, pinnedOnly ? 1 : 0])
            let back = try PasswordUse.decode(bytes)
            XCTAssertEqual(back, use)
            XCTAssertEqual(back.pinnedOnly, pinnedOnly)
        }
    }

    func testLengthIsExact() {
        let bytes = PasswordUse(newId: newId, oldId: oldId, graceSeconds: 600, pinnedOnly: true).encode()
        XCTAssertThrowsError(try PasswordUse.decode(Array(bytes.dropLast())), "the 20 bytes of a message without flags")
        XCTAssertThrowsError(try PasswordUse.decode(bytes + [0]), "a byte after the flags")
    }

    func testOtherFlagBitsAreKeptButMeanNothing() throws {
        let use = try PasswordUse.decode(newId + oldId + [0, 0, 0, 1, 0xFE])
        XCTAssertFalse(use.pinnedOnly)
        XCTAssertEqual(use.encode().last, 0xFE)
    }
}
