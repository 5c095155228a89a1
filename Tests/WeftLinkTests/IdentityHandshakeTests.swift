// The version-2 link handshake (docs/protocol.md §3.10) in memory: three messages, hellos in 2
// and 3, each side learns the other's identity key, and a name that is not its key's is refused.
import Foundation
import XCTest
import WeftCrypto
import WeftWire
@testable import WeftLink

final class IdentityHandshakeLinkTests: XCTestCase {
    let psk = LinkPair.psk
    let dialerKey = IdentityKey.generate()
    let acceptorKey = IdentityKey.generate()

    private func hello(for key: IdentityKey, _ n: UInt8) -> Hello {
        var hello = LinkPair.hello(n)
        hello.name = PeerName(bytes: key.peerNameBytes)
        return hello
    }

    private func pair(acceptorPSK: PreSharedKey? = nil) throws -> (IdentityHandshake, IdentityHandshake) {
        (try IdentityHandshake(initiator: true, psk: psk, prologuePSKId: psk.id, version: 2, identity: dialerKey),
         try IdentityHandshake(initiator: false, psk: acceptorPSK ?? psk, prologuePSKId: psk.id, version: 2, identity: acceptorKey))
    }

    func testThreeMessagesAuthenticateBothKeysAndHellos() throws {
        var (dialer, acceptor) = try pair()
        let m1 = try dialer.writeMessage1()
        XCTAssertEqual(m1.count, 32 + 16, "message 1: an ephemeral key and the tag of an empty payload")
        try acceptor.readMessage1(m1)
        let fromAcceptor = try dialer.readMessage2(acceptor.writeMessage2(hello: hello(for: acceptorKey, 2)))
        XCTAssertEqual(fromAcceptor, .init(hello: hello(for: acceptorKey, 2), identityKey: acceptorKey.publicKey))
        let fromDialer = try acceptor.readMessage3(dialer.writeMessage3(hello: hello(for: dialerKey, 1)))
        XCTAssertEqual(fromDialer, .init(hello: hello(for: dialerKey, 1), identityKey: dialerKey.publicKey))
        XCTAssertTrue(dialer.isComplete && acceptor.isComplete)
        XCTAssertEqual(dialer.chainingKey, acceptor.chainingKey)
    }

    func testWrongPasswordFailsAtMessage1() throws {
        var (dialer, acceptor) = try pair(acceptorPSK: LinkPair.otherPSK)
        XCTAssertThrowsError(try acceptor.readMessage1(dialer.writeMessage1())) {
            XCTAssertEqual($0 as? IdentityHandshake.Failure, .didNotVerify)
        }
    }

    func testAPayloadInMessage1IsRefused() throws {
        var noise = try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: true,
                                            prologue: LinkPrologue.bytes(version: 2, pskId: psk.id), psk: psk.key,
                                            staticPrivateKey: dialerKey.privateKey)
        var (_, acceptor) = try pair()
        XCTAssertThrowsError(try acceptor.readMessage1(noise.writeMessage(payload: [1]))) {
            XCTAssertEqual($0 as? IdentityHandshake.Failure, .payloadInMessage1)
        }
    }

    /// A holder of the password claiming another router's name with its own key is refused by
    /// either side, with code 11 and both names in the reason.
    func testANameThatIsNotTheKeysIsRefused() throws {
        let victim = PeerName("02:00:00:00:00:07")!
        var (dialer, acceptor) = try pair()
        try acceptor.readMessage1(dialer.writeMessage1())
        var claiming = hello(for: acceptorKey, 2)
        claiming.name = victim
        XCTAssertThrowsError(try dialer.readMessage2(acceptor.writeMessage2(hello: claiming))) {
            guard case .identity(let refusal) = $0 as? IdentityHandshake.Failure else { return XCTFail("\($0)") }
            XCTAssertEqual(refusal.code, .identityMismatch)
            XCTAssertTrue(refusal.text.contains("02:00:00:00:00:07"), refusal.text)
            XCTAssertTrue(refusal.text.contains(PeerName(bytes: self.acceptorKey.peerNameBytes).description), refusal.text)
        }

        var (dialer2, acceptor2) = try pair()
        try acceptor2.readMessage1(dialer2.writeMessage1())
        _ = try dialer2.readMessage2(acceptor2.writeMessage2(hello: hello(for: acceptorKey, 2)))
        var impostor = hello(for: dialerKey, 1)
        impostor.name = victim
        XCTAssertThrowsError(try acceptor2.readMessage3(dialer2.writeMessage3(hello: impostor))) {
            guard case .identity(let refusal) = $0 as? IdentityHandshake.Failure else { return XCTFail("\($0)") }
            XCTAssertEqual(refusal.code, .identityMismatch)
        }
    }

    func testPrologueIsWeftVersionAndPSKId() {
        XCTAssertEqual(LinkPrologue.bytes(version: 2, pskId: psk.id), Array("weft".utf8) + [2] + psk.id.bytes)
        XCTAssertEqual(LinkPrologue.bytes(version: 2, pskId: psk.id).count, 13)
    }

    /// The XXpsk0 vectors made outside Weft (Keys/vectors/noise-xxpsk0-weft.json) use the link's
    /// prologue for their PSK, and an empty message 1, where they model the link.
    func testVectorsUseTheLinkPrologue() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Keys/vectors/noise-xxpsk0-weft.json")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as! [String: Any]
        let linkVectors = (root["vectors"] as! [[String: Any]]).filter { ($0["init_prologue"] as? String)?.isEmpty == false }
        XCTAssertGreaterThanOrEqual(linkVectors.count, 4)
        for vector in linkVectors {
            let psk = PreSharedKey(key: try XCTUnwrap(Hex.decode((vector["init_psks"] as! [String])[0])))
            XCTAssertEqual(vector["init_prologue"] as? String, Hex.encode(LinkPrologue.bytes(version: 2, pskId: psk.id)))
            XCTAssertEqual((vector["messages"] as! [[String: String]])[0]["payload"], "", vector["name"] as? String ?? "")
        }
    }
}
