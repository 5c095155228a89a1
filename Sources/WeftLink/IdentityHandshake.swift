// The gossip link's handshake of protocol version 2 (docs/protocol.md §3.10), between the link's
// frames and Noise: XXpsk0 under Weft's prologue, an empty message 1, the responder's hello in
// message 2 and the initiator's in message 3, and the check that each hello's name is the one its
// authenticated identity key gives. Pure; the link state machine is to drive it in place of the
// version-1 handshake.
import WeftCrypto
import WeftWire

/// The Noise prologue of the gossip link, every version (docs/protocol.md §3.3): `weft`, the
/// negotiated version, the initiator's PSK id.
public enum LinkPrologue {
    public static func bytes(version: UInt8, pskId: PSKID) -> [UInt8] { Array("weft".utf8) + [version] + pskId.bytes }
}

/// Why a hello is refused for its key, or nil when its name is the one the key gives.
public enum IdentityCheck {
    public static func refusal(hello: Hello, remoteStatic: [UInt8]) -> Refuse? {
        let derived = PeerName(bytes: IdentityKey.peerNameBytes(publicKey: remoteStatic))
        guard hello.name != derived else { return nil }
        return Refuse(code: .identityMismatch,
                      text: "identity mismatch: peer name \(hello.name) does not belong to its identity key "
                          + "(fingerprint \(IdentityKey.fingerprint(publicKey: remoteStatic)), whose name is \(derived))")
    }
}

public struct IdentityHandshake {
    public enum Failure: Error, Equatable {
        /// A Noise message did not verify (wrong password at message 1, tampering later).
        case didNotVerify
        /// Message 1 carried a payload; version 2 puts nothing in it.
        case payloadInMessage1
        /// The hello's name does not belong to the key; the refusal to send.
        case identity(Refuse)
    }

    /// What a read message 2 or 3 authenticated: the peer's hello and its identity key.
    public struct Peer: Equatable {
        public let hello: Hello
        public let identityKey: [UInt8]
    }

    public let initiator: Bool
    private var noise: NoiseHandshakeState

    public init(initiator: Bool, psk: PreSharedKey, prologuePSKId: PSKID, version: UInt8, identity: IdentityKey) throws {
        self.initiator = initiator
        noise = try NoiseHandshakeState(protocol: .weftLinkIdentity, initiator: initiator,
                                        prologue: LinkPrologue.bytes(version: version, pskId: prologuePSKId),
                                        psk: psk.key, staticPrivateKey: identity.privateKey)
    }

    public var isComplete: Bool { noise.isComplete }
    /// The input of `LinkKeys.derive` once complete (docs/protocol.md §3.5).
    public var chainingKey: [UInt8] { noise.chainingKey }

    /// Initiator: message 1 (`psk, e`, empty payload).
    public mutating func writeMessage1() throws -> [UInt8] { try noise.writeMessage(payload: []) }

    /// Responder: reads message 1; `didNotVerify` means the initiator lacks this password.
    public mutating func readMessage1(_ message: [UInt8]) throws(Failure) {
        let payload: [UInt8]
        do { payload = try noise.readMessage(message) } catch { throw .didNotVerify }
        guard payload.isEmpty else { throw .payloadInMessage1 }
    }

    /// Responder: message 2 (`e, ee, s, es`) carrying its hello.
    public mutating func writeMessage2(hello: Hello) throws -> [UInt8] { try noise.writeMessage(payload: hello.encode()) }

    /// Initiator: reads message 2: the responder's hello and key, checked against each other.
    public mutating func readMessage2(_ message: [UInt8]) throws -> Peer { try readPeer(message) }

    /// Initiator, once it admits the responder: message 3 (`s, se`) carrying its hello.
    public mutating func writeMessage3(hello: Hello) throws -> [UInt8] { try noise.writeMessage(payload: hello.encode()) }

    /// Responder: reads message 3: the initiator's hello and key, checked against each other.
    public mutating func readMessage3(_ message: [UInt8]) throws -> Peer { try readPeer(message) }

    private mutating func readPeer(_ message: [UInt8]) throws -> Peer {
        let payload: [UInt8]
        do { payload = try noise.readMessage(message) } catch { throw Failure.didNotVerify }
        let hello = try Hello.decode(payload)
        let key = noise.remoteStaticPublicKey!
        if let refusal = IdentityCheck.refusal(hello: hello, remoteStatic: key) { throw Failure.identity(refusal) }
        return Peer(hello: hello, identityKey: key)
    }
}
