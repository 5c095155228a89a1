import XCTest
@testable import WeftCrypto

func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex)! }

/// Both sides of a completed NNpsk0 handshake.
struct Handshake {
    var initiator: NoiseHandshakeState
    var responder: NoiseHandshakeState
}

let testPrologue: [UInt8] = Array("weft".utf8) + [1] + [UInt8](repeating: 0xab, count: 8)

func handshake(psk: [UInt8], responderPSK: [UInt8]? = nil) throws -> Handshake {
    var initiator = try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: testPrologue, psk: psk)
    var responder = try NoiseHandshakeState(protocol: .weftLink, initiator: false, prologue: testPrologue, psk: responderPSK ?? psk)
    let m1 = try initiator.writeMessage(payload: Array("hello from initiator".utf8))
    XCTAssertEqual(try responder.readMessage(m1), Array("hello from initiator".utf8))
    let m2 = try responder.writeMessage(payload: Array("hello from responder".utf8))
    XCTAssertEqual(try initiator.readMessage(m2), Array("hello from responder".utf8))
    return Handshake(initiator: initiator, responder: responder)
}

final class PrimitiveTests: XCTestCase {
    func testBlake2bKnownAnswers() {
        // Python: hashlib.blake2b(b"abc") and digest_size=32
        XCTAssertEqual(Blake2b.hash(Array("abc".utf8)), bytes(
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"))
        XCTAssertEqual(Blake2b.hash(Array("abc".utf8), outputLength: 32), bytes(
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"))
    }

    /// Expected values from Python: hmac.new(key, data, hashlib.blake2b).hexdigest().
    func testHMACBlake2bKnownAnswers() {
        XCTAssertEqual(NoiseHash.hmac(key: [UInt8](repeating: 0x0b, count: 20), data: Array("Hi There".utf8)), bytes(
            "358a6a184924894fc34bee5680eedf57d84a37bb38832f288e3b27dc63a98cc8c91e76da476b508bc6b2d408a248857452906e4a20b48c6b4b55d2df0fe1dd24"))
        // A key longer than the 128-byte block is hashed first.
        XCTAssertEqual(NoiseHash.hmac(key: [UInt8](repeating: 0xaa, count: 131),
                                      data: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)), bytes(
            "a54b2943b2a20227d41ca46c0945af09bc1faefb2f49894c23aebc557fb79c4889dca74408dc865086667aedee4a3185c53a49c80b814c4c5813ea0c8b38a8f8"))
        XCTAssertEqual(NoiseHash.hmac(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8)), bytes(
            "6ff884f8ddc2a6586b3c98a4cd6ebdf14ec10204b6710073eb5865ade37a2643b8807c1335d107ecdb9ffeaeb6828c4625ba172c66379efcd222c2de11727ab4"))
        XCTAssertEqual(NoiseHash.hmac(key: [], data: []), bytes(
            "198cd2006f66ff83fbbd913f78aca2251caf4f19fe9475aade8cf2091b99a68466775177424f58286886cbae8229644cec747237d4b721735485e17372fdf59c"))
        // A key of exactly one block is used as is.
        XCTAssertEqual(NoiseHash.hmac(key: [UInt8](repeating: 1, count: 128), data: Array("abc".utf8)), bytes(
            "d790f361ce73c15a62f1953ae442824befd6a26d821ccad51af1ef7855a76db0c9bb4d82460a403c9c89a74c8b5f930a63dcc816af624cae88d44f26c94cd051"))
    }

    func testNoiseHKDFKnownAnswer() {
        let out = NoiseHash.hkdf(chainingKey: Array(0..<64), inputKeyMaterial: Array("weft hkdf test".utf8), outputs: 3)
        XCTAssertEqual(out, [
            bytes("8e4ee4a3815d8a1c2310fce521c13b101ad096ed11e023594912b2493b61d1f69cbc167170492b8a0a4de6a6dce8a35cdfa072128c89a05c53af805a1ba74823"),
            bytes("42514f9dc7d2b58a776bcaa0a6cc694acba458053092cccda5386a6ed4a148491161b8584e1049d20a4e1cc29896ebfd27f296851b17c6ce30e05931f005a432"),
            bytes("69ab19eb0dcdd022f573b20867cdbebbadd7309b59811288f38fc45ab468f03aae05f4cfc0df9d87371625670c1de3d24b56aac4b7d60c8af46197189676a9de"),
        ])
        XCTAssertEqual(NoiseHash.hkdf(chainingKey: Array(0..<64), inputKeyMaterial: Array("weft hkdf test".utf8), outputs: 2),
                       Array(out.prefix(2)))
    }

    func testNonceLayouts() {
        XCTAssertEqual(AEAD.nonce(.chaChaPoly, counter: 0x0102030405060708), [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
        XCTAssertEqual(AEAD.nonce(.aesGCM, counter: 0x0102030405060708), [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    }

    func testProtocolNames() {
        XCTAssertEqual(NoiseProtocol.weftLink.name, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b")
        XCTAssertEqual(NoiseProtocol.weftLink.handshake, .nn)
        XCTAssertEqual(NoiseProtocol.weftLink.pskModifiers, [0])
        XCTAssertEqual(NoiseProtocol.weftLink.cipher, .chaChaPoly)
        XCTAssertEqual(NoiseProtocol.weftLinkIdentity.name, "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b")
        XCTAssertEqual(NoiseProtocol.weftLinkIdentity.handshake, .xx)
        XCTAssertEqual(NoiseProtocol.weftLinkIdentity.pskModifiers, [0])
        XCTAssertEqual(NoiseProtocol(name: "Noise_XXpsk0+psk1+psk2+psk3_25519_AESGCM_BLAKE2b")?.pskModifiers, [0, 1, 2, 3])
        XCTAssertEqual(NoiseProtocol(name: "Noise_NNpsk2_25519_ChaChaPoly_BLAKE2b")?.pskModifiers, [2])
        XCTAssertEqual(NoiseProtocol(name: "Noise_NN_25519_AESGCM_BLAKE2b")?.handshake, .nn)
        XCTAssertEqual(NoiseProtocol(name: "Noise_NN_25519_AESGCM_BLAKE2b")?.pskModifiers, [])
        XCTAssertEqual(NoiseProtocol(name: "Noise_NN_25519_AESGCM_BLAKE2b")?.cipher, .aesGCM)
        XCTAssertNotNil(NoiseProtocol(name: "Noise_NN_25519_ChaChaPoly_BLAKE2b"))
        XCTAssertNotNil(NoiseProtocol(name: "Noise_NNpsk0_25519_AESGCM_BLAKE2b"))
        for bad in ["Noise_NN_25519_ChaChaPoly_SHA256", "Noise_IK_25519_ChaChaPoly_BLAKE2b", "Noise_NNpsk3_25519_ChaChaPoly_BLAKE2b",
                    "Noise_XXpsk4_25519_ChaChaPoly_BLAKE2b", "Noise_XXpsk1+psk0_25519_ChaChaPoly_BLAKE2b", "Noise_XXpsk0+psk0_25519_ChaChaPoly_BLAKE2b",
                    "Noise_XXpsk_25519_ChaChaPoly_BLAKE2b", "Noise_XXpsk01_25519_ChaChaPoly_BLAKE2b", "Noise_XX1_25519_ChaChaPoly_BLAKE2b",
                    "Noise_XXpsk0+_25519_ChaChaPoly_BLAKE2b", "Noise_XXpsk+1_25519_ChaChaPoly_BLAKE2b",
                    "Noise_NN_448_ChaChaPoly_BLAKE2b", "Noise_NN_25519_ChaChaPoly_BLAKE2b_", "", "noise_NN_25519_ChaChaPoly_BLAKE2b"] {
            XCTAssertNil(NoiseProtocol(name: bad), bad)
        }
    }

    func testAESGCMAvailabilityMatchesSodium() {
        // This machine has AES-NI; elsewhere the vectors for AESGCM are skipped, not failed.
        print("AES-256-GCM available: \(DataCipher.aesGCMAvailable)")
        XCTAssertEqual(DataCipher(rawValue: "aes-256-gcm"), .aes256GCM)
        XCTAssertEqual(DataCipher.chaCha20Poly1305.rawValue, "chacha20-poly1305")
    }
}

final class HandshakeTests: XCTestCase {
    let psk = [UInt8](repeating: 7, count: 32)

    func testNNpsk0RoundTripAndLinkKeys() throws {
        let hs = try handshake(psk: psk)
        XCTAssertTrue(hs.initiator.isComplete)
        XCTAssertTrue(hs.responder.isComplete)
        XCTAssertEqual(hs.initiator.chainingKey.count, 64)
        XCTAssertEqual(hs.initiator.chainingKey, hs.responder.chainingKey)
        XCTAssertEqual(hs.initiator.handshakeHash, hs.responder.handshakeHash)

        let ik = LinkKeys.derive(chainingKey: hs.initiator.chainingKey)
        let rk = LinkKeys.derive(chainingKey: hs.responder.chainingKey)
        XCTAssertEqual(ik.tcpInitiatorToResponder, rk.tcpInitiatorToResponder)
        XCTAssertEqual(ik.tcpResponderToInitiator, rk.tcpResponderToInitiator)
        XCTAssertEqual(ik.udpInitiatorToResponder, rk.udpInitiatorToResponder)
        XCTAssertEqual(ik.udpResponderToInitiator, rk.udpResponderToInitiator)
        let all = [ik.tcpInitiatorToResponder, ik.tcpResponderToInitiator, ik.udpInitiatorToResponder, ik.udpResponderToInitiator]
        XCTAssertEqual(Set(all).count, 4, "all four link keys differ")
        XCTAssertTrue(all.allSatisfy { $0.count == 32 })

        // Crosswise: what the initiator seals with its i2r key, the responder opens with its i2r key.
        var iSeal = LinkSealer(key: ik.tcpInitiatorToResponder), rOpen = LinkOpener(key: rk.tcpInitiatorToResponder)
        var rSeal = LinkSealer(key: rk.tcpResponderToInitiator), iOpen = LinkOpener(key: ik.tcpResponderToInitiator)
        XCTAssertEqual(try rOpen.open(iSeal.seal([0x10, 1, 2])), [0x10, 1, 2])
        XCTAssertEqual(try iOpen.open(rSeal.seal([0x11])), [0x11])
        // A direction's key does not open the other direction.
        var wrongWay = LinkOpener(key: ik.tcpResponderToInitiator)
        XCTAssertThrowsError(try wrongWay.open(iSeal.seal([1])))

        // Noise's own split works too and agrees crosswise.
        var (i1, i2) = hs.initiator.split()
        var (r1, r2) = hs.responder.split()
        XCTAssertEqual(try r1.decrypt(ad: [], ciphertext: i1.encrypt(ad: [], plaintext: [1, 2, 3])), [1, 2, 3])
        XCTAssertEqual(try i2.decrypt(ad: [], ciphertext: r2.encrypt(ad: [], plaintext: [4])), [4])
    }

    func testHandshakesAreFresh() throws {
        let a = try handshake(psk: psk), b = try handshake(psk: psk)
        XCTAssertNotEqual(a.initiator.chainingKey, b.initiator.chainingKey, "random ephemerals")
    }

    func testWrongPSKFailsOnMessage1() throws {
        var initiator = try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: testPrologue, psk: psk)
        var responder = try NoiseHandshakeState(protocol: .weftLink, initiator: false, prologue: testPrologue,
                                                psk: [UInt8](repeating: 8, count: 32))
        let m1 = try initiator.writeMessage(payload: Array("hello".utf8))
        XCTAssertThrowsError(try responder.readMessage(m1)) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        XCTAssertFalse(responder.isComplete)
    }

    func testPrologueMismatchFailsOnMessage1() throws {
        var initiator = try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: testPrologue, psk: psk)
        var responder = try NoiseHandshakeState(protocol: .weftLink, initiator: false, prologue: testPrologue + [0], psk: psk)
        XCTAssertThrowsError(try responder.readMessage(initiator.writeMessage(payload: []))) {
            XCTAssertEqual($0 as? NoiseError, .decryptFailed)
        }
    }

    func testEverySingleBitFlipOfMessage1Fails() throws {
        var initiator = try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: testPrologue, psk: psk)
        let fresh = try NoiseHandshakeState(protocol: .weftLink, initiator: false, prologue: testPrologue, psk: psk)
        let m1 = try initiator.writeMessage(payload: Array("hello, 20 bytes long".utf8))
        XCTAssertEqual(m1.count, 32 + 20 + 16)
        for bit in 0..<(m1.count * 8) {
            var flipped = m1
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            var responder = fresh
            XCTAssertThrowsError(try responder.readMessage(flipped), "bit \(bit)") {
                XCTAssertEqual($0 as? NoiseError, .decryptFailed, "bit \(bit)")
            }
        }
        var responder = fresh
        XCTAssertNoThrow(try responder.readMessage(m1))
    }

    func testTamperedMessage2Fails() throws {
        var initiator = try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: testPrologue, psk: psk)
        var responder = try NoiseHandshakeState(protocol: .weftLink, initiator: false, prologue: testPrologue, psk: psk)
        _ = try responder.readMessage(initiator.writeMessage(payload: []))
        var m2 = try responder.writeMessage(payload: [1, 2, 3])
        m2[m2.count - 1] ^= 0x80
        XCTAssertThrowsError(try initiator.readMessage(m2)) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        XCTAssertFalse(initiator.isComplete)
    }

    func testStateErrors() throws {
        var initiator = try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: [], psk: psk)
        var responder = try NoiseHandshakeState(protocol: .weftLink, initiator: false, prologue: [], psk: psk)
        XCTAssertThrowsError(try initiator.readMessage([UInt8](repeating: 0, count: 64))) { XCTAssertEqual($0 as? NoiseError, .wrongState) }
        XCTAssertThrowsError(try responder.writeMessage(payload: [])) { XCTAssertEqual($0 as? NoiseError, .wrongState) }
        XCTAssertThrowsError(try responder.readMessage([1, 2, 3])) { XCTAssertEqual($0 as? NoiseError, .messageTooShort) }
        let m1 = try initiator.writeMessage(payload: [])
        XCTAssertThrowsError(try responder.readMessage(Array(m1.prefix(40)))) { XCTAssertEqual($0 as? NoiseError, .messageTooShort) }
        XCTAssertThrowsError(try initiator.writeMessage(payload: [])) { XCTAssertEqual($0 as? NoiseError, .wrongState) }
        _ = try responder.readMessage(m1)
        _ = try initiator.readMessage(responder.writeMessage(payload: []))
        XCTAssertThrowsError(try initiator.writeMessage(payload: [])) { XCTAssertEqual($0 as? NoiseError, .wrongState) }
        XCTAssertThrowsError(try responder.readMessage(m1)) { XCTAssertEqual($0 as? NoiseError, .wrongState) }
    }

    func testKeyValidation() {
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: [], psk: nil))
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: [], psk: [1, 2, 3]))
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: NoiseProtocol(name: "Noise_NN_25519_ChaChaPoly_BLAKE2b")!,
                                                     initiator: true, prologue: [], psk: psk))
        XCTAssertThrowsError(try NoiseHandshakeState(protocol: .weftLink, initiator: true, prologue: [], psk: psk,
                                                     ephemeralPrivateKey: [1]))
        // A low-order remote ephemeral (all zeros) is refused at the DH.
        var responder = try! NoiseHandshakeState(protocol: NoiseProtocol(name: "Noise_NN_25519_ChaChaPoly_BLAKE2b")!,
                                                 initiator: false, prologue: [], psk: nil)
        XCTAssertNoThrow(try responder.readMessage([UInt8](repeating: 0, count: 32)))
        XCTAssertThrowsError(try responder.writeMessage(payload: [])) {
            guard case .invalidKey = $0 as? NoiseError else { return XCTFail("\($0)") }
        }
    }

    func testNNWithoutPSK() throws {
        let nn = NoiseProtocol(name: "Noise_NN_25519_ChaChaPoly_BLAKE2b")!
        var initiator = try NoiseHandshakeState(protocol: nn, initiator: true, prologue: [], psk: nil)
        var responder = try NoiseHandshakeState(protocol: nn, initiator: false, prologue: [], psk: nil)
        let m1 = try initiator.writeMessage(payload: [9, 9])
        XCTAssertEqual(Array(m1.suffix(2)), [9, 9], "NN message 1 payload is in clear")
        XCTAssertEqual(try responder.readMessage(m1), [9, 9])
        XCTAssertEqual(try initiator.readMessage(responder.writeMessage(payload: [8])), [8])
        XCTAssertEqual(initiator.chainingKey, responder.chainingKey)
    }
}

final class LinkTests: XCTestCase {
    let key = Array(UInt8(0)..<32)

    func testHundredMessageRoundTrip() throws {
        var sealer = LinkSealer(key: key)
        var opener = LinkOpener(key: key)
        for i in 0..<100 {
            let plaintext = [UInt8](repeating: UInt8(i), count: i * 7)
            let sealed = sealer.seal(plaintext)
            XCTAssertEqual(sealed.count, plaintext.count + 16)
            XCTAssertEqual(try opener.open(sealed), plaintext)
        }
        XCTAssertEqual(sealer.counter, 100)
        XCTAssertEqual(opener.counter, 100)
    }

    func testSealMatchesNoiseChaChaPolyNonce() throws {
        // Frame n is the Noise ChaChaPoly cipher state's n-th message with empty ad.
        var sealer = LinkSealer(key: key)
        var cipherState = NoiseCipherState(cipher: .chaChaPoly, key: key)
        for i in 0..<3 {
            XCTAssertEqual(sealer.seal([UInt8(i)]), cipherState.encrypt(ad: [], plaintext: [UInt8(i)]))
        }
    }

    func testReorderedTamperedReplayedAndTruncatedFramesFail() throws {
        var sealer = LinkSealer(key: key)
        let frames = (0..<4).map { sealer.seal([0x10, UInt8($0)]) }

        var opener = LinkOpener(key: key)
        // Reordered: frame 1 before frame 0.
        XCTAssertThrowsError(try opener.open(frames[1])) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        XCTAssertEqual(opener.counter, 0, "a failed open does not advance the counter")
        XCTAssertEqual(try opener.open(frames[0]), [0x10, 0])
        // Replayed.
        XCTAssertThrowsError(try opener.open(frames[0])) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        // Tampered, in the body and in the tag.
        for index in [0, frames[1].count - 1] {
            var tampered = frames[1]
            tampered[index] ^= 1
            XCTAssertThrowsError(try opener.open(tampered)) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        }
        // Truncated.
        XCTAssertThrowsError(try opener.open(Array(frames[1].prefix(15)))) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        XCTAssertThrowsError(try opener.open(Array(frames[1].dropLast()))) { XCTAssertEqual($0 as? NoiseError, .decryptFailed) }
        // The genuine stream still opens.
        XCTAssertEqual(try opener.open(frames[1]), [0x10, 1])
        XCTAssertEqual(try opener.open(frames[2]), [0x10, 2])
        // Wrong key.
        var other = LinkOpener(key: [UInt8](repeating: 1, count: 32))
        XCTAssertThrowsError(try other.open(frames[0]))
    }
}

final class PSKTests: XCTestCase {
    func testDeriveIsDeterministicAndDoesNotEnforceLength() throws {
        // The 12-character minimum is the CLI's job.
        XCTAssertEqual(PreSharedKey.minimumPasswordLength, 12)
        let a = try PreSharedKey.derive(password: "short")
        let b = try PreSharedKey.derive(password: "short")
        XCTAssertEqual(a.key, b.key)
        XCTAssertEqual(a.id, b.id)
        XCTAssertEqual(a.key.count, 32)
        let c = try PreSharedKey.derive(password: "shorT")
        XCTAssertNotEqual(a.key, c.key)
        XCTAssertNotEqual(a.id, c.id)
        XCTAssertEqual(PreSharedKey(key: a.key).id, a.id)
        XCTAssertEqual(try PreSharedKey.derive(password: "").key.count, 32)
    }

    func testPSKIDFormats() throws {
        let id = try XCTUnwrap(PSKID(hex: "E9724d02a6632f44"))
        XCTAssertEqual(id.description, "e9724d02a6632f44")
        XCTAssertEqual(id.bytes, [0xe9, 0x72, 0x4d, 0x02, 0xa6, 0x63, 0x2f, 0x44])
        XCTAssertNil(PSKID(hex: "e9724d02a6632f4"))
        XCTAssertNil(PSKID(hex: "e9724d02a6632f4400"))
        XCTAssertNil(PSKID(hex: "g9724d02a6632f44"))
        XCTAssertEqual(PSKID.zero.description, "0000000000000000")
        XCTAssertLessThan(PSKID.zero, id)
        XCTAssertLessThan(PSKID(hex: "00000000000000ff")!, PSKID(hex: "0100000000000000")!)

        let encoded = try JSONEncoder().encode([id])
        XCTAssertEqual(String(decoding: encoded, as: UTF8.self), #"["e9724d02a6632f44"]"#)
        XCTAssertEqual(try JSONDecoder().decode([PSKID].self, from: encoded), [id])
        XCTAssertThrowsError(try JSONDecoder().decode([PSKID].self, from: Data(#"["xyz"]"#.utf8)))
    }

    func testPSKIDOfKnownKey() {
        // From Keys/vectors/weft-kdf.json ("correct horse battery staple"), computed in Python.
        let key = PreSharedKey(key: bytes("57ffc9fa94b7fb17dd54f6e816eafda58a6bf67efa08b7734523f5d08eb3fd51"))
        XCTAssertEqual(key.id.description, "e9724d02a6632f44")
    }
}
