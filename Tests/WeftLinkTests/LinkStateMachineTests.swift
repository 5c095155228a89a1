// The gossip link protocol (docs/protocol.md §3), two state machines paired in memory: the
// version-2 identity handshake (§3.10), every refusal path, rekeys, duplicates and timeouts,
// with injected time.
import WeftCrypto
import WeftLink
import WeftMesh
import WeftWire
import XCTest

final class LinkStateMachineTests: XCTestCase {
    // MARK: establishing

    func testSealedLinkEstablishesWithTheSameKeysAndCarriesMessagesBothWays() throws {
        let pair = LinkPair()
        pair.connect()
        XCTAssertEqual(pair.dialer.machine.state, .established)
        XCTAssertEqual(pair.acceptor.machine.state, .established)
        XCTAssertEqual(pair.dialer.machine.remoteHello, LinkPair.hello(2))
        XCTAssertEqual(pair.acceptor.machine.remoteHello, LinkPair.hello(1))
        XCTAssertEqual(pair.dialer.machine.pskId, LinkPair.psk.id)
        XCTAssertEqual(pair.acceptor.machine.pskId, LinkPair.psk.id)
        let keys = try XCTUnwrap(pair.dialer.machine.linkKeys)
        XCTAssertEqual(keys.tcpInitiatorToResponder, pair.acceptor.machine.linkKeys?.tcpInitiatorToResponder)
        XCTAssertEqual(keys.udpResponderToInitiator, pair.acceptor.machine.linkKeys?.udpResponderToInitiator)

        pair.dialer.send(.gossip, [1, 2, 3], now: pair.now)
        pair.acceptor.send(.gossip, [4, 5], now: pair.now)
        XCTAssertFalse(pair.dialer.outbox.contains(subsequence: [MessageType.gossip.rawValue, 1, 2, 3]), "gossip left in clear")
        pair.pump()
        XCTAssertEqual(pair.acceptor.delivered.map(\.payload), [[1, 2, 3]])
        XCTAssertEqual(pair.dialer.delivered.map(\.payload), [[4, 5]])
    }

    /// Version 2 (protocol.md §3.10): three messages, an empty message 1, the responder's hello in
    /// message 2 and the dialer's in HANDSHAKE_FINISH; each side ends up with the other's key.
    func testVersion2HandshakeAuthenticatesEachSidesIdentityKey() throws {
        let pair = LinkPair()
        pair.start()
        XCTAssertEqual(try Preamble.decode(Array(pair.dialer.outbox.prefix(Preamble.size))).maxVersion, 2)
        XCTAssertEqual(try Preamble.decode(Array(pair.dialer.outbox.prefix(Preamble.size))).minVersion, 2)
        pair.toAcceptor()
        pair.toDialer()
        let message1 = try frames(pair.dialer.outbox)
        XCTAssertEqual(message1.map(\.first), [MessageType.handshakeInit.rawValue])
        XCTAssertEqual(message1.first?.count, 1 + 32 + 16, "message 1: type, ephemeral key, the tag of an empty payload")
        pair.toAcceptor()
        XCTAssertEqual(try frames(pair.acceptor.outbox).map(\.first), [MessageType.handshakeResponse.rawValue])
        XCTAssertNil(pair.acceptor.machine.remoteHello, "the responder knows nobody before message 3")
        pair.toDialer()
        XCTAssertEqual(pair.dialer.machine.remoteIdentity, LinkPair.identity(2).publicKey)
        XCTAssertTrue(pair.dialer.established, "the dialer is established once it wrote message 3")
        XCTAssertEqual(try frames(pair.dialer.outbox).map(\.first), [MessageType.handshakeFinish.rawValue])
        pair.toAcceptor()
        XCTAssertTrue(pair.acceptor.established)
        XCTAssertEqual(pair.acceptor.machine.remoteIdentity, LinkPair.identity(1).publicKey)
        XCTAssertEqual(pair.acceptor.machine.remoteHello, LinkPair.hello(1))
        for end in [pair.dialer, pair.acceptor] { XCTAssertEqual(end.machine.version, 2) }
        XCTAssertEqual(pair.dialer.machine.linkKeys?.tcpResponderToInitiator, pair.acceptor.machine.linkKeys?.tcpResponderToInitiator)
        assertCarriesMessages(pair)
    }

    /// The responder claims router 3's name with router 2's key: the dialer refuses it with
    /// REFUSE 11 after message 2, in clear (the responder has no keys before message 3).
    func testAResponderWhoseNameIsNotItsKeysIsRefusedWith11() {
        let pair = LinkPair(acceptorHello: LinkPair.hello(3), acceptorIdentity: LinkPair.identity(2))
        pair.connect()
        let text = mismatch(name: LinkPair.hello(3).name, key: LinkPair.identity(2))
        XCTAssertEqual(pair.dialer.closed?.refusal, .identityMismatch)
        XCTAssertEqual(pair.dialer.closed?.reason, text)
        XCTAssertNil(pair.dialer.machine.remoteIdentity, "a key whose name check failed was kept")
        XCTAssertEqual(pair.acceptor.closed?.refusal, .identityMismatch)
        XCTAssertEqual(pair.acceptor.closed?.reason, "refused by remote: \(text)")
        XCTAssertFalse(pair.dialer.established || pair.acceptor.established)
    }

    /// The dialer claims router 3's name with router 1's key: the responder refuses it with
    /// REFUSE 11 after message 3, sealed, and the dialer (established) reads the reason.
    func testADialerWhoseNameIsNotItsKeysIsRefusedWith11() {
        let pair = LinkPair(dialerHello: LinkPair.hello(3), dialerIdentity: LinkPair.identity(1))
        var admissions = 0
        pair.acceptor.admission = { _, _ in admissions += 1; return nil }
        pair.start()
        for _ in 0..<10 where !pair.dialer.established {
            pair.toAcceptor()
            pair.toDialer()
        }
        pair.toAcceptor()
        let text = mismatch(name: LinkPair.hello(3).name, key: LinkPair.identity(1))
        XCTAssertEqual(pair.acceptor.closed?.refusal, .identityMismatch)
        XCTAssertEqual(pair.acceptor.closed?.reason, text)
        XCTAssertEqual(admissions, 0, "admission was asked about a hello whose name is not its key's")
        XCTAssertFalse(pair.acceptor.outbox.contains(subsequence: Array("identity mismatch".utf8)), "REFUSE 11 after message 3 left in clear")
        pair.pump()
        XCTAssertEqual(pair.dialer.closed?.refusal, .identityMismatch)
        XCTAssertEqual(pair.dialer.closed?.reason, "refused by remote: \(text)")
        XCTAssertFalse(pair.acceptor.established)
    }

    /// A version-1 router sends its preamble (1…1) and then REFUSE 4 in one read: both sides'
    /// reasons name the version and the host to upgrade (protocol.md §3.10).
    func testAVersion1PeerIsRefusedWithCode4AndTheUpgradeText() throws {
        let text = "protocol version 1 is not spoken here (this router speaks 2); upgrade weft on that host"
        for initiator in [false, true] {
            var machine = LinkStateMachine(initiator: initiator, localHello: LinkPair.hello(2), localPSK: LinkPair.psk,
                                           identity: LinkPair.identity(2), now: 0)
            _ = machine.start(now: 0)
            let v1 = Preamble(minVersion: 1, maxVersion: 1, hasPassword: true, pskId: LinkPair.psk.id.bytes).encode()
                + FrameDecoder.frame([MessageType.refuse.rawValue] + Refuse(code: .noCommonVersion, text: "no common protocol version (remote speaks 2…2)").encode())
            let refusal = try clearRefusal(in: machine.receive(v1, now: 1, keyring: { _ in LinkPair.psk }))
            XCTAssertEqual(refusal, Refuse(code: .noCommonVersion, text: text))
            XCTAssertEqual(machine.reason, text)
            XCTAssertEqual(machine.refuseCode, .noCommonVersion)
            XCTAssertEqual(machine.state, .closing)
        }
    }

    /// Message 1 is replayable and not forward-secret, so version 2 sends it empty; one with a
    /// payload is a protocol error (REFUSE 7), and the responder writes no message 2.
    func testAMessage1WithAPayloadIsRefusedWithCode7() throws {
        var machine = LinkStateMachine(initiator: false, localHello: LinkPair.hello(2), localPSK: LinkPair.psk,
                                       identity: LinkPair.identity(2), now: 0)
        _ = machine.start(now: 0)
        var noise = try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: true,
                                            prologue: LinkPrologue.bytes(version: 2, pskId: LinkPair.psk.id), psk: LinkPair.psk.key,
                                            staticPrivateKey: LinkPair.identity(1).privateKey)
        let message1 = try noise.writeMessage(payload: LinkPair.hello(1).encode())
        let input = Preamble(hasPassword: true, pskId: LinkPair.psk.id.bytes).encode()
            + FrameDecoder.frame([MessageType.handshakeInit.rawValue] + message1)
        let actions = machine.receive(input, now: 1, keyring: { _ in LinkPair.psk })
        let refusal = try clearRefusal(in: actions)
        XCTAssertEqual(refusal.code, .protocolError)
        XCTAssertTrue(refusal.text.contains("message 1 with a payload"), refusal.text)
        XCTAssertEqual(actions.filter { if case .write = $0 { true } else { false } }.count, 1, "more than the refusal was written")
        XCTAssertEqual(machine.state, .closing)
    }

    func testPlainLinkEstablishesWithoutKeysAndTheDialerSendsItsHelloFirst() {
        let pair = LinkPair(dialerPSK: nil, acceptorPSK: nil)
        pair.start()
        pair.toAcceptor()  // the dialer's preamble: the acceptor waits for HELLO_PLAIN
        XCTAssertTrue(pair.acceptor.outbox.count == Preamble.size, "the acceptor wrote more than its preamble")
        pair.toDialer()  // the acceptor's preamble: the dialer answers with its hello
        XCTAssertEqual(pair.dialer.machine.state, .hello)
        pair.pump()
        XCTAssertEqual(pair.dialer.machine.state, .established)
        XCTAssertEqual(pair.acceptor.machine.state, .established)
        XCTAssertNil(pair.dialer.machine.linkKeys)
        XCTAssertNil(pair.dialer.machine.remoteIdentity, "a key without a handshake to authenticate it")
        XCTAssertNil(pair.acceptor.machine.remoteIdentity)
        XCTAssertFalse(pair.dialer.machine.canRekey)
        XCTAssertNil(pair.dialer.machine.startRekey(psk: nil, now: pair.now))
    }

    /// Frames that arrive in the same read as the hello are read once the owner admitted it.
    func testMessagesBehindTheHelloAreDeliveredAfterAdmission() {
        let pair = LinkPair(dialerPSK: nil, acceptorPSK: nil)
        pair.acceptor.onEvent = { end, event in
            if case .established = event { end.send(.gossip, [9], now: 0) }
        }
        pair.connect()
        XCTAssertEqual(pair.dialer.delivered.map(\.payload), [[9]])
    }

    /// A connection that closes while a delivered message is being handled (a write inside the
    /// handling failed and the channel went inactive) leaves nothing waiting for the owner:
    /// otherwise the owner's "resume while it waits" loop spins forever on a closed link, as
    /// routers of a 100-router mesh did (every resume answered nothing and waited on).
    func testATransportClosedDuringADeliveryLeavesNothingWaiting() {
        let pair = LinkPair()
        pair.connect()
        XCTAssertTrue(pair.acceptor.established)
        pair.dialer.send(.gossip, [1], now: pair.now)
        pair.dialer.send(.gossip, [2], now: pair.now)
        let bytes = pair.dialer.outbox
        pair.dialer.outbox = []
        var machine = pair.acceptor.machine
        let actions = machine.receive(bytes, now: pair.now, keyring: { _ in LinkPair.psk })
        XCTAssertEqual(actions.filter { if case .deliver = $0 { true } else { false } }.count, 1, "one delivery at a time")
        XCTAssertTrue(machine.waitsForOwner)
        machine.transportClosed()
        XCTAssertFalse(machine.waitsForOwner, "a closed link waits for nobody")
        XCTAssertTrue(machine.resume(now: pair.now, keyring: { _ in LinkPair.psk }).isEmpty)
        XCTAssertFalse(machine.waitsForOwner)
    }

    // MARK: refusals (protocol.md §3.1)

    func testUnknownPSKIdIsRefusedWithCode1WhenHandshakeInitArrives() {
        let pair = LinkPair(acceptorPSK: LinkPair.otherPSK)
        pair.start()
        pair.toAcceptor()
        XCTAssertNil(pair.acceptor.closed, "refused before HANDSHAKE_INIT")
        pair.pump()
        XCTAssertEqual(pair.acceptor.closed?.refusal, .unknownPSKId)
        XCTAssertEqual(pair.dialer.closed?.refusal, .unknownPSKId)
        XCTAssertTrue(pair.dialer.closed?.reason.contains("unknown password id \(LinkPair.psk.id) at the remote") == true, "\(String(describing: pair.dialer.closed))")
    }

    func testWrongPSKUnderAKnownIdIsRefusedWithCode2() {
        // The acceptor files a different key under the dialer's id: message 1 cannot decrypt.
        let impostor = PreSharedKey(key: LinkPair.otherPSK.key)
        let pair = LinkPair(acceptorKeyring: [impostor])
        pair.acceptor.keyring = [LinkPair.psk.id: impostor]
        pair.connect()
        XCTAssertEqual(pair.acceptor.closed?.refusal, .handshakeFailed)
        XCTAssertEqual(pair.dialer.closed?.refusal, .handshakeFailed)
        XCTAssertEqual(pair.dialer.closed?.reason, "authentication failed: wrong password (remote could not verify our handshake)")
    }

    func testPasswordOnOneSideOnlyIsRefusedWithCode3ByBothSides() {
        let pair = LinkPair(acceptorPSK: nil)
        pair.connect()
        XCTAssertEqual(pair.dialer.machine.reason, "remote has no password; refusing to talk in clear")
        XCTAssertEqual(pair.acceptor.machine.reason, "remote requires a password; none configured here")
        XCTAssertEqual(pair.dialer.machine.refuseCode, .passwordMismatch)
        XCTAssertEqual(pair.acceptor.machine.refuseCode, .passwordMismatch)
    }

    func testNoCommonVersionIsRefusedWithCode4InClear() throws {
        var machine = LinkStateMachine(initiator: false, localHello: LinkPair.hello(2), localPSK: nil, identity: LinkPair.identity(2), now: 0)
        _ = machine.start(now: 0)
        let future = Preamble(minVersion: 9, maxVersion: 9, hasPassword: false, pskId: PSKID.zero.bytes)
        let actions = machine.receive(future.encode(), now: 1, keyring: { _ in nil })
        let refusal = try clearRefusal(in: actions)
        XCTAssertEqual(refusal.code, .noCommonVersion)
        XCTAssertEqual(refusal.text, "the remote speaks protocol versions 9…9, newer than this router's 2; upgrade weft on this host")
        XCTAssertEqual(machine.state, .closing)
    }

    func testGarbageAndOversizeFramesAreRefusedWithCode7InClear() throws {
        var garbage = LinkStateMachine(initiator: false, localHello: LinkPair.hello(2), localPSK: LinkPair.psk, identity: LinkPair.identity(2), now: 0)
        XCTAssertEqual(try clearRefusal(in: garbage.receive([UInt8](repeating: 0x41, count: 15), now: 1, keyring: { _ in nil })).code, .protocolError)

        var oversize = LinkStateMachine(initiator: false, localHello: LinkPair.hello(2), localPSK: LinkPair.psk, identity: LinkPair.identity(2), now: 0)
        let preamble = Preamble(hasPassword: true, pskId: LinkPair.psk.id.bytes).encode()
        let actions = oversize.receive(preamble + [0xff, 0xff, 0xff, 0xff], now: 1, keyring: { _ in LinkPair.psk })
        XCTAssertEqual(try clearRefusal(in: actions).code, .protocolError)
        XCTAssertEqual(oversize.state, .closing)
    }

    /// Version 2: the responder decides admission after message 3, when the dialer is already
    /// established; its refusal is sealed (nonce 0) and the dialer reads the reason, not a MAC failure.
    func testRefusalByTheResponderAtAdmissionIsSealedAndReadByTheEstablishedDialer() {
        let pair = LinkPair()
        pair.acceptor.admission = { _, _ in Refuse(code: .connectingToSelf, text: "connection to self") }
        pair.start()
        for _ in 0..<10 where !pair.dialer.established {
            pair.toAcceptor()
            pair.toDialer()
        }
        pair.toAcceptor()
        XCTAssertEqual(pair.acceptor.closed?.refusal, .connectingToSelf)
        XCTAssertFalse(pair.acceptor.outbox.contains(subsequence: Array("connection to self".utf8)), "refusal after message 3 left in clear")
        pair.pump()
        XCTAssertEqual(pair.dialer.closed?.refusal, .connectingToSelf)
        XCTAssertEqual(pair.dialer.closed?.reason, "refused by remote: connection to self")
        XCTAssertTrue(pair.dialer.established)
        XCTAssertFalse(pair.acceptor.established)
    }

    /// Version 2: the dialer refusing after message 2 has not sent message 3, so the responder
    /// holds no keys yet: the REFUSE is in clear and the responder reads the reason.
    func testRefusalByTheDialerAfterMessage2IsClearAndReadByTheResponder() {
        let pair = LinkPair()
        pair.dialer.admission = { _, _ in Refuse(code: .duplicateConnection, text: "duplicate connection; keeping the other one") }
        pair.connect()
        XCTAssertFalse(pair.acceptor.established)
        XCTAssertEqual(pair.acceptor.closed?.refusal, .duplicateConnection)
        XCTAssertEqual(pair.acceptor.closed?.reason, "refused by remote: duplicate connection; keeping the other one")
        XCTAssertEqual(pair.dialer.closed?.refusal, .duplicateConnection)
        XCTAssertFalse(pair.dialer.established)
    }

    func testFailingAnEstablishedLinkSendsASealedRefusal() {
        let pair = LinkPair()
        pair.connect()
        pair.dialer.perform(pair.dialer.machine.fail("router shutting down", refuse: .shuttingDown, now: pair.now), now: pair.now)
        XCTAssertFalse(pair.dialer.outbox.contains(subsequence: Array("router shutting down".utf8)), "refusal left in clear")
        pair.pump()
        XCTAssertEqual(pair.acceptor.closed?.refusal, .shuttingDown)
        XCTAssertEqual(pair.acceptor.closed?.reason, "refused by remote: router shutting down")
    }

    func testASealedMessageThatDoesNotVerifyClosesWithoutARefusal() {
        let pair = LinkPair()
        pair.connect()
        pair.dialer.send(.gossip, [1, 2, 3], now: pair.now)
        pair.dialer.outbox[pair.dialer.outbox.count - 1] ^= 1
        pair.pump()
        XCTAssertEqual(pair.acceptor.closed?.reason, "a sealed message did not verify; closing the link")
        XCTAssertNil(pair.acceptor.closed?.refusal)
        XCTAssertTrue(pair.acceptor.outbox.isEmpty)
    }

    // MARK: timeouts (injected time)

    func testAHandshakeThatDoesNotCompleteIn10sIsRefusedWithCode10() throws {
        let pair = LinkPair()
        pair.start()
        pair.toAcceptor()  // the acceptor's answers never reach the dialer
        pair.acceptor.outbox = []
        pair.advance(seconds: 9.9)
        pair.tick(pair.acceptor)
        XCTAssertNil(pair.acceptor.closed)
        pair.advance(seconds: 0.2)
        pair.tick(pair.acceptor)
        XCTAssertEqual(pair.acceptor.closed?.refusal, .handshakeTimeout)
        XCTAssertEqual(pair.acceptor.closed?.reason, "handshake timed out after 10 s")
    }

    /// #12 at 100 routers, in version 2: the dialer wrote message 3 and is established, but the
    /// responder's handshake timeout ran out before message 3 arrived; its REFUSE 10 is in clear
    /// (it has no keys). The dialer reads the timeout, not a MAC failure.
    func testRespondersTimeoutBeforeMessage3IsReadByTheEstablishedDialer() {
        let pair = LinkPair()
        pair.start()
        for _ in 0..<10 where !pair.dialer.established {
            pair.toAcceptor()
            pair.toDialer()
        }
        XCTAssertTrue(pair.dialer.established)
        XCTAssertFalse(pair.acceptor.established)
        pair.dialer.outbox = []  // message 3 is lost in the busy network
        pair.advance(seconds: 10.1)
        pair.tick(pair.acceptor)
        XCTAssertEqual(pair.acceptor.closed?.refusal, .handshakeTimeout)
        pair.toDialer()
        XCTAssertEqual(pair.dialer.closed?.refusal, .handshakeTimeout)
        XCTAssertEqual(pair.dialer.closed?.reason, "refused by remote: handshake timed out after 10 s")
    }

    func testKeepaliveAfter5sOfSilenceAndCloseAfter20sWithoutTraffic() {
        let pair = LinkPair()
        pair.connect()
        pair.advance(seconds: 5)
        pair.tick(pair.dialer)
        XCTAssertFalse(pair.dialer.outbox.isEmpty, "no keepalive after 5 s")
        pair.toAcceptor()
        XCTAssertTrue(pair.acceptor.delivered.isEmpty, "a keepalive was delivered to the owner")
        pair.advance(seconds: 15.5)
        pair.tick(pair.acceptor)  // heard the keepalive 15.5 s ago
        XCTAssertNil(pair.acceptor.closed)
        pair.acceptor.outbox = []  // its keepalive is lost: the dialer heard nothing for 20.5 s
        pair.tick(pair.dialer)
        XCTAssertEqual(pair.dialer.closed?.reason, "no traffic from peer for 20 s")
        XCTAssertNil(pair.dialer.closed?.refusal)
    }

    func testARekeyWithoutAnAnswerClosesTheLinkAfter10s() {
        let pair = LinkPair()
        pair.connect()
        XCTAssertNotNil(pair.dialer.machine.startRekey(psk: nil, now: pair.now))
        XCTAssertEqual(pair.dialer.machine.state, .rekeying)
        pair.dialer.outbox = []
        pair.advance(seconds: 10.1)
        pair.tick(pair.dialer)
        XCTAssertEqual(pair.dialer.closed?.reason, "rekey got no answer within 10 s")
        XCTAssertEqual(pair.dialer.closed?.refusal, .protocolError)
    }

    // MARK: rekeying (protocol.md §3.7)

    func testRekeyKeepingThePasswordMovesBothSidesToEpoch1WithNewKeys() throws {
        let pair = LinkPair()
        pair.connect()
        let before = try XCTUnwrap(pair.dialer.machine.linkKeys)
        pair.advance(seconds: 1)
        pair.dialer.perform(try XCTUnwrap(pair.dialer.machine.startRekey(psk: nil, now: pair.now)), now: pair.now)
        XCTAssertNil(pair.dialer.machine.startRekey(psk: nil, now: pair.now), "a second rekey started while one is under way")
        pair.pump()
        assertRekeyed(pair, epoch: 1, pskId: LinkPair.psk.id)
        XCTAssertNotEqual(pair.dialer.machine.linkKeys?.tcpInitiatorToResponder, before.tcpInitiatorToResponder)
        XCTAssertEqual(pair.dialer.machine.keysSince, pair.now)
        // Each side accepts the epoch before it, or the other, sends with it.
        XCTAssertEqual(pair.dialer.eventNames.filter { $0 != "deliver" }.suffix(3), ["accept 1", "send 1", "rekeyed"])
        XCTAssertEqual(pair.acceptor.eventNames.filter { $0 != "deliver" }.suffix(3), ["accept 1", "send 1", "rekeyed"])

        // A second rekey starts from the first one's chaining key, from the other side this time.
        pair.acceptor.perform(try XCTUnwrap(pair.acceptor.machine.startRekey(psk: nil, now: pair.now)), now: pair.now)
        pair.pump()
        assertRekeyed(pair, epoch: 2, pskId: LinkPair.psk.id)
    }

    func testRekeyToANewPasswordTheResponderHoldsMovesTheLinkToIt() {
        let pair = LinkPair(acceptorKeyring: [LinkPair.psk, LinkPair.otherPSK])
        pair.connect()
        pair.dialer.perform(pair.dialer.machine.startRekey(psk: LinkPair.otherPSK, now: pair.now) ?? [], now: pair.now)
        pair.pump()
        assertRekeyed(pair, epoch: 1, pskId: LinkPair.otherPSK.id)
    }

    func testRekeyToAPasswordTheResponderLacksFailsAndKeepsTheKeys() throws {
        let pair = LinkPair()
        pair.connect()
        let before = try XCTUnwrap(pair.dialer.machine.linkKeys)
        pair.dialer.perform(pair.dialer.machine.startRekey(psk: LinkPair.otherPSK, now: pair.now) ?? [], now: pair.now)
        pair.pump()
        XCTAssertEqual(pair.dialer.eventNames.last, "rekey failed")
        XCTAssertFalse(pair.acceptor.eventNames.contains("rekeyed"))
        XCTAssertEqual(pair.dialer.machine.epoch, 0)
        XCTAssertEqual(pair.acceptor.machine.epoch, 0)
        XCTAssertEqual(pair.dialer.machine.linkKeys?.tcpInitiatorToResponder, before.tcpInitiatorToResponder)
        XCTAssertEqual(pair.dialer.machine.state, .established)
        assertCarriesMessages(pair)
    }

    func testCrossingRekeysEndWithTheDialersRekey() throws {
        let pair = LinkPair()
        pair.connect()
        pair.dialer.perform(try XCTUnwrap(pair.dialer.machine.startRekey(psk: nil, now: pair.now)), now: pair.now)
        pair.acceptor.perform(try XCTUnwrap(pair.acceptor.machine.startRekey(psk: nil, now: pair.now)), now: pair.now)
        pair.pump()
        assertRekeyed(pair, epoch: 1, pskId: LinkPair.psk.id)
        // The acceptor abandoned its own rekey (ended without failure) and answered the dialer's.
        XCTAssertEqual(pair.acceptor.eventNames.filter { $0 == "rekeyed" }.count, 2)
        XCTAssertEqual(pair.dialer.eventNames.filter { $0 == "rekeyed" }.count, 1)
    }

    func testARekeyOutOfOrderIsRefusedWithCode7Sealed() {
        let pair = LinkPair()
        pair.connect()
        let wrongEpoch = RekeyInit(epoch: 5, pskId: PSKID.zero.bytes, ephemeral: RekeyEphemeral().publicKey)
        pair.dialer.send(.rekeyInit, wrongEpoch.encode(), now: pair.now)
        pair.pump()
        XCTAssertEqual(pair.acceptor.closed?.refusal, .protocolError)
        XCTAssertEqual(pair.dialer.closed?.refusal, .protocolError)
        XCTAssertTrue(pair.dialer.closed?.reason.hasPrefix("refused by remote: protocol error") == true, "\(String(describing: pair.dialer.closed))")
    }

    // MARK: duplicate connections (protocol.md §3.9)

    /// Two routers dial each other at once and both handshakes reach message 2. Whichever
    /// side decides first, exactly one connection survives, on both, and nobody sees a MAC failure.
    /// (a, router 1, has the smaller name.)
    func testCrossingDialsEndWithOneConnectionAndNoMACFailure() {
        XCTAssertLessThan(LinkPair.hello(1).name, LinkPair.hello(2).name)
        for dialerOfSmallerNameReadsMessage2First in [false, true] {
            let a = Router(name: 1), b = Router(name: 2)
            let ab = LinkPair(dialerHello: LinkPair.hello(1), acceptorHello: LinkPair.hello(2))  // a dials b
            let ba = LinkPair(dialerHello: LinkPair.hello(2), acceptorHello: LinkPair.hello(1))  // b dials a
            a.own(ab.dialer, ba.acceptor)
            b.own(ab.acceptor, ba.dialer)
            for pair in [ab, ba] {
                pair.start()
                pair.toAcceptor()
                pair.toDialer()  // message 1 written
                pair.toAcceptor()  // the acceptor wrote message 2
            }
            XCTAssertFalse(ab.acceptor.established || ba.acceptor.established)
            if dialerOfSmallerNameReadsMessage2First {
                ab.toDialer()  // a admits the connection it dialed and writes message 3
                ba.toDialer()  // b admits its own dial too: both dialers are established
            } else {
                ba.toDialer()  // b's dialer is established
                ba.toAcceptor()  // a admits b's dial after message 3
                ab.toDialer()  // a's own dial wins and closes b's, sealed
            }
            ab.pump()
            ba.pump()
            let label = "smaller name first: \(dialerOfSmallerNameReadsMessage2First)"
            XCTAssertEqual(ab.dialer.machine.state, .established, label)
            XCTAssertEqual(ab.acceptor.machine.state, .established, label)
            XCTAssertEqual(ba.dialer.machine.state, .closing, label)
            XCTAssertEqual(ba.acceptor.machine.state, .closing, label)
            XCTAssertEqual(ba.dialer.closed?.refusal, .duplicateConnection, label)
            XCTAssertEqual(ba.acceptor.closed?.refusal, .duplicateConnection, label)
            for end in [ab.dialer, ab.acceptor, ba.dialer, ba.acceptor] {
                XCTAssertFalse(end.closed?.reason.contains("did not verify") == true, "\(label): \(String(describing: end.closed))")
            }
            XCTAssertTrue(a.established[LinkPair.hello(2).name] === ab.dialer, label)
            XCTAssertTrue(b.established[LinkPair.hello(1).name] === ab.acceptor, label)
        }
    }

    /// With the same UID, a redial by the side that dialed the established link replaces it (that
    /// side lost it), and of crossing dials the smaller name's wins; a restarted peer (new UID)
    /// replaces the established link at once.
    func testRedialReplacesTheLostLinkCrossingDialsFollowTheNamesAndARestartedPeerWins() {
        let a = Router(name: 1), b = Router(name: 2)
        // b dials a: the only link, so it is admitted.
        let first = LinkPair(dialerHello: LinkPair.hello(2), acceptorHello: LinkPair.hello(1))
        b.own(first.dialer)
        a.own(first.acceptor)
        first.connect()
        XCTAssertEqual(first.acceptor.machine.state, .established)

        // b (the greater name) lost that link at its end (its NAT's mapping changed: a never
        // heard) and dials again, same incarnation: the new connection replaces the dead one.
        first.dialer.perform(first.dialer.machine.fail("idle", refuse: nil, now: 0), now: 0)
        b.established[LinkPair.hello(1).name] = nil
        let again = LinkPair(dialerHello: LinkPair.hello(2), acceptorHello: LinkPair.hello(1))
        b.own(again.dialer)
        a.own(again.acceptor)
        again.connect()
        XCTAssertEqual(again.dialer.machine.state, .established)
        XCTAssertEqual(again.acceptor.machine.state, .established)
        XCTAssertEqual(first.acceptor.closed?.refusal, .duplicateConnection)
        XCTAssertTrue(a.established[LinkPair.hello(2).name] === again.acceptor)

        // a (the smaller name) dials b at the same time as b's link stands (crossing): its
        // connection replaces the one b dialed.
        let mine = LinkPair(dialerHello: LinkPair.hello(1), acceptorHello: LinkPair.hello(2))
        a.own(mine.dialer)
        b.own(mine.acceptor)
        mine.connect()
        again.pump()
        XCTAssertEqual(mine.dialer.machine.state, .established)
        XCTAssertEqual(mine.acceptor.machine.state, .established)
        XCTAssertEqual(again.dialer.closed?.refusal, .duplicateConnection)
        XCTAssertTrue(a.established[LinkPair.hello(2).name] === mine.dialer)
        XCTAssertTrue(b.established[LinkPair.hello(1).name] === mine.acceptor)

        // b dials a once more while that link stands: a crossing the greater name loses.
        let late = LinkPair(dialerHello: LinkPair.hello(2), acceptorHello: LinkPair.hello(1))
        b.own(late.dialer)
        a.own(late.acceptor)
        late.connect()
        XCTAssertEqual(late.dialer.closed?.refusal, .duplicateConnection)
        XCTAssertTrue(a.established[LinkPair.hello(2).name] === mine.dialer)

        // b restarted (new UID) and dials a: the new link wins, the old one is told so.
        let restarted = LinkPair(dialerHello: LinkPair.hello(2, uid: 99), acceptorHello: LinkPair.hello(1))
        a.own(restarted.acceptor)
        restarted.connect()
        mine.pump()
        XCTAssertEqual(restarted.dialer.machine.state, .established)
        XCTAssertEqual(mine.dialer.closed?.reason, "peer restarted")
        XCTAssertEqual(mine.acceptor.closed?.refusal, .duplicateConnection)
        XCTAssertEqual(mine.acceptor.closed?.reason, "refused by remote: peer restarted")
        XCTAssertTrue(a.established[LinkPair.hello(2).name] === restarted.acceptor)
    }

    // MARK: helpers

    /// The router's admission (Sources/WeftRouter/Router.swift, linkAuthenticated) over in-memory
    /// links: one established link per peer, duplicates resolved by WeftMesh's rule.
    private final class Router {
        let name: PeerName
        var established: [PeerName: Endpoint] = [:]

        init(name: UInt8) { self.name = LinkPair.hello(name).name }

        func own(_ ends: Endpoint...) {
            for end in ends {
                end.admission = { [unowned self] end, hello in
                    guard let existing = established[hello.name], existing !== end else { return nil }
                    switch DuplicateConnections.resolve(local: name, remote: hello.name, newIsOutbound: end.machine.isInitiator,
                                                        existingIsOutbound: existing.machine.isInitiator,
                                                        existingUID: existing.machine.remoteHello?.uid, newUID: hello.uid) {
                    case .replaceExisting(let reason):
                        existing.perform(existing.machine.fail(reason, refuse: .duplicateConnection, now: 0), now: 0)
                        return nil
                    case .refuseNew:
                        return Refuse(code: .duplicateConnection, text: "duplicate connection; keeping the other one")
                    }
                }
                end.onEvent = { [unowned self] end, event in
                    guard let peer = end.machine.remoteHello?.name else { return }
                    switch event {
                    case .established: established[peer] = end
                    case .close: if established[peer] === end { established[peer] = nil }
                    default: break
                    }
                }
            }
        }
    }

    private func assertRekeyed(_ pair: LinkPair, epoch: UInt8, pskId: PSKID, file: StaticString = #filePath, line: UInt = #line) {
        for end in [pair.dialer, pair.acceptor] {
            XCTAssertEqual(end.machine.state, .established, file: file, line: line)
            XCTAssertEqual(end.machine.epoch, epoch, file: file, line: line)
            XCTAssertEqual(end.machine.pskId, pskId, file: file, line: line)
        }
        XCTAssertEqual(pair.dialer.machine.linkKeys?.tcpResponderToInitiator, pair.acceptor.machine.linkKeys?.tcpResponderToInitiator, file: file, line: line)
        XCTAssertEqual(pair.dialer.machine.linkKeys?.udpInitiatorToResponder, pair.acceptor.machine.linkKeys?.udpInitiatorToResponder, file: file, line: line)
        assertCarriesMessages(pair, file: file, line: line)
    }

    private func assertCarriesMessages(_ pair: LinkPair, file: StaticString = #filePath, line: UInt = #line) {
        let toAcceptor = pair.acceptor.delivered.count, toDialer = pair.dialer.delivered.count
        pair.dialer.send(.gossip, [7], now: pair.now)
        pair.acceptor.send(.gossip, [8], now: pair.now)
        pair.pump()
        XCTAssertEqual(pair.acceptor.delivered.count, toAcceptor + 1, "dialer → acceptor", file: file, line: line)
        XCTAssertEqual(pair.dialer.delivered.count, toDialer + 1, "acceptor → dialer", file: file, line: line)
        XCTAssertNil(pair.dialer.closed, file: file, line: line)
        XCTAssertNil(pair.acceptor.closed, file: file, line: line)
    }

    /// The text of REFUSE 11 (protocol.md §3.10) for a hello naming `name` under `key`.
    private func mismatch(name: PeerName, key: IdentityKey) -> String {
        "identity mismatch: peer name \(name) does not belong to its identity key (fingerprint \(key.fingerprint), "
            + "whose name is \(PeerName(bytes: key.peerNameBytes)))"
    }

    /// The frame bodies in written bytes (no preamble).
    private func frames(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var decoder = FrameDecoder(limit: FrameLimits.afterHandshake)
        decoder.append(bytes)
        var result: [[UInt8]] = []
        while let body = try decoder.next() { result.append(body) }
        return result
    }

    /// The REFUSE a machine wrote in clear, from the actions of one call (after its preamble, if any).
    private func clearRefusal(in actions: [LinkAction]) throws -> Refuse {
        var decoder = FrameDecoder(limit: FrameLimits.beforeHandshake)
        for case let .write(bytes) in actions where bytes.count != Preamble.size || bytes.first != Preamble.magic.first {
            decoder.append(bytes)
        }
        let body = try XCTUnwrap(try decoder.next(), "no frame written")
        XCTAssertEqual(body.first, MessageType.refuse.rawValue)
        return try Refuse.decode(Array(body.dropFirst()))
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<($0 + subsequence.count)]) == subsequence }
    }
}
