import XCTest
@testable import WeftCrypto

final class RekeyTests: XCTestCase {
    func testBothSidesDeriveTheSameFreshKeys() throws {
        let ck = [UInt8](repeating: 7, count: 64)
        let a = RekeyEphemeral()
        let b = RekeyEphemeral()
        let psk = [UInt8](repeating: 9, count: 32)
        let ckA = try Rekey.nextChainingKey(ck, ours: a, theirPublicKey: b.publicKey, psk: psk)
        let ckB = try Rekey.nextChainingKey(ck, ours: b, theirPublicKey: a.publicKey, psk: psk)
        XCTAssertEqual(ckA, ckB)
        XCTAssertEqual(ckA.count, 64)
        XCTAssertNotEqual(ckA, ck)
        let withoutPSK = try Rekey.nextChainingKey(ck, ours: a, theirPublicKey: b.publicKey, psk: [])
        XCTAssertNotEqual(withoutPSK, ckA, "the PSK is bound into the new keys")
        XCTAssertNotEqual(LinkKeys.derive(chainingKey: ckA).udpInitiatorToResponder, LinkKeys.derive(chainingKey: ck).udpInitiatorToResponder)
        XCTAssertThrowsError(try Rekey.nextChainingKey(ck, ours: a, theirPublicKey: [UInt8](repeating: 0, count: 32), psk: []))
    }
}
