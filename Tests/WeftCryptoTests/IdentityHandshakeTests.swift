// XXpsk0, the identity handshake of protocol version 2 (docs/protocol.md §3.3), run in memory:
// both static keys authenticated, the password still checked first, nothing readable without it.
import XCTest
@testable import WeftCrypto

final class IdentityHandshakeTests: XCTestCase {
    let psk = [UInt8](repeating: 7, count: 32)
    let initiatorStatic = [UInt8](repeating: 0x11, count: 32)
    let responderStatic = [UInt8](repeating: 0x22, count: 32)

    private func states(responderPSK: [UInt8]? = nil) throws -> (NoiseHandshakeState, NoiseHandshakeState) {
        let i = try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: true, prologue: testPrologue, psk: psk,
                                        staticPrivateKey: initiatorStatic)
        let r = try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: false, prologue: testPrologue,
                                        psk: responderPSK ?? psk, staticPrivateKey: responderStatic)
        return (i, r)
    }

    func testRoundTripAuthenticatesBothStaticKeys() throws {
        var (i, r) = try states()
        let m1 = try i.writeMessage(payload: Array("one".utf8))
        XCTAssertEqual(m1.count, 32 + 3 + 16, "psk0: even message 1's payload is encrypted")
        XCTAssertEqual(try r.readMessage(m1), Array("one".utf8))
        XCTAssertNil(r.remoteStaticPublicKey)
        let m2 = try r.writeMessage(payload: Array("two".utf8))
        XCTAssertEqual(m2.count, 32 + (32 + 16) + 3 + 16)
        XCTAssertEqual(try i.readMessage(m2), Array("two".utf8))
        XCTAssertEqual(i.remoteStaticPublicKey, X25519.publicKey(privateKey: responderStatic))
        let m3 = try i.writeMessage(payload: Array("three".utf8))
        XCTAssertEqual(m3.count, (32 + 16) + 5 + 16)
        XCTAssertEqual(try r.readMessage(m3), Array("three".utf8))
        XCTAssertEqual(r.remoteStaticPublicKey, X25519.publicKey(privateKey: initiatorStatic))
        XCTAssertTrue(i.isComplete && r.isComplete)
        XCTAssertEqual(i.chainingKey, r.chainingKey)
        XCTAssertEqual(i.handshakeHash, r.handshakeHash)
    }

    func testNoStaticKeyAppearsInClear() throws {
        var (i, r) = try states()
        let m1 = try i.writeMessage(payload: [])
        _ = try r.readMessage(m1)
        let m2 = try r.writeMessage(payload: [])
        _ = try i.readMessage(m2)
        let m3 = try i.writeMessage(payload: [])
        let wire = m1 + m2 + m3
        for key in [X25519.publicKey(privateKey: initiatorStatic), X25519.publicKey(privateKey: responderStatic)] {
            XCTAssertFalse((0...(wire.count - key.count)).contains { Array(wire[$0..<$0 + key.count]) == key })
        }
    }

    func testWrongPasswordRefusedAtMessage1() throws {
        var (i, r) = try states(responderPSK: [UInt8](repeating: 8, count: 32))
        XCTAssertThrowsError(try r.readMessage(i.writeMessage(payload: []))) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        XCTAssertFalse(r.isComplete)
        XCTAssertNil(r.remoteStaticPublicKey)
    }

    /// A man in the middle who swaps the responder's static key for his own cannot finish message 2.
    func testSubstitutedStaticKeyFails() throws {
        var (i, r) = try states()
        _ = try r.readMessage(i.writeMessage(payload: []))
        var m2 = try r.writeMessage(payload: [])
        m2[32 + 5] ^= 1
        XCTAssertThrowsError(try i.readMessage(m2)) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        XCTAssertNil(i.remoteStaticPublicKey)
    }

    func testTamperedMessage3Fails() throws {
        var (i, r) = try states()
        _ = try r.readMessage(i.writeMessage(payload: []))
        _ = try i.readMessage(r.writeMessage(payload: []))
        var m3 = try i.writeMessage(payload: [1])
        XCTAssertThrowsError(try r.readMessage(Array(m3.prefix(40)))) { XCTAssertEqual($0 as? NoiseError, .messageTooShort) }
        m3[0] ^= 0x40
        XCTAssertThrowsError(try r.readMessage(m3)) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        XCTAssertFalse(r.isComplete)
    }

    func testKeyValidation() {
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: true, prologue: [], psk: psk))
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: false, prologue: [], psk: psk,
                                                     staticPrivateKey: [1, 2]))
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: [], psk: psk,
                                                     staticPrivateKey: initiatorStatic))
        let two = NoiseProtocol(name: "Noise_XXpsk0+psk3_25519_ChaChaPoly_BLAKE2b")!
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: two, initiator: true, prologue: [], psk: psk, staticPrivateKey: initiatorStatic))
        XCTAssertNoThrow(try NoiseHandshakeState(protocol: two, initiator: true, prologue: [], psks: [psk, psk], staticPrivateKey: initiatorStatic))
    }
}
