// The Noise Protocol Framework (revision 34) as Weft uses it: NN and XX, with psk modifiers, over
// 25519, ChaChaPoly or AESGCM, and BLAKE2b.
import CSodium

public enum NoiseCipher: Sendable {
    case chaChaPoly, aesGCM
}

/// The handshake patterns WeftCrypto implements (Noise specification revision 34, §7.4). Neither
/// has pre-messages: a router knows only an address at first contact, not a key.
public enum NoiseHandshakePattern: String, Sendable {
    /// `-> e`, `<- e, ee`: no static keys.
    case nn = "NN"
    /// `-> e`, `<- e, ee, s, es`, `-> s, se`: both static keys sent encrypted, the initiator's last.
    case xx = "XX"

    fileprivate var messages: [[NoiseToken]] {
        switch self {
        case .nn: return [[.e], [.e, .ee]]
        case .xx: return [[.e], [.e, .ee, .s, .es], [.s, .se]]
        }
    }
}

fileprivate enum NoiseToken { case e, s, ee, es, se, psk }

/// A Noise protocol WeftCrypto implements: `Noise_<NN|XX>[pskN[+pskN…]]_25519_<ChaChaPoly|AESGCM>_BLAKE2b`.
public struct NoiseProtocol: Sendable, Equatable {
    public let handshake: NoiseHandshakePattern
    /// The psk modifiers in name order (§9.2): 0 puts a psk token first in message 1, N ≥ 1 last
    /// in message N. Strictly increasing; empty for a pattern without PSK.
    public let pskModifiers: [Int]
    public let cipher: NoiseCipher
    public let name: String

    /// Accepts exactly the names above (modifiers strictly increasing and within the pattern's
    /// messages); nil otherwise.
    public init?(name: String) {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "Noise", parts[2] == "25519", parts[4] == "BLAKE2b" else { return nil }
        let pattern = parts[1]
        guard let base = NoiseHandshakePattern(rawValue: String(pattern.prefix(2))) else { return nil }
        var modifiers: [Int] = []
        let rest = pattern.dropFirst(2)
        if !rest.isEmpty {
            for modifier in rest.split(separator: "+", omittingEmptySubsequences: false) {
                guard modifier.hasPrefix("psk"), let n = Int(modifier.dropFirst(3)), String(n) == modifier.dropFirst(3),
                      n >= 0, n <= base.messages.count, n > (modifiers.last ?? -1) else { return nil }
                modifiers.append(n)
            }
        }
        switch parts[3] {
        case "ChaChaPoly": cipher = .chaChaPoly
        case "AESGCM": cipher = .aesGCM
        default: return nil
        }
        handshake = base
        pskModifiers = modifiers
        self.name = name
    }

    /// The token lists of the messages, the psk modifiers applied.
    fileprivate var messages: [[NoiseToken]] {
        var messages = handshake.messages
        for n in pskModifiers {
            if n == 0 { messages[0].insert(.psk, at: 0) } else { messages[n - 1].append(.psk) }
        }
        return messages
    }

    /// Whether this side sends a static key (and so needs a static private key).
    public func sendsStatic(initiator: Bool) -> Bool {
        messages.enumerated().contains { index, tokens in (index % 2 == 0) == initiator && tokens.contains(.s) }
    }

    /// The gossip link's handshake of protocol version 1 (docs/protocol.md §3.3).
    public static let weftLink = NoiseProtocol(name: "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b")!

    /// The gossip link's handshake of protocol version 2, with each router's identity key
    /// (docs/protocol.md §3.3): psk0 refuses a peer without the password at the first message,
    /// before the responder computes any DH, and hides both static keys from anyone without it.
    public static let weftLinkIdentity = NoiseProtocol(name: "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b")!
}

public enum NoiseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An AEAD tag did not verify.
    case decryptFailed
    /// A message is shorter than its tokens (and tag) require.
    case messageTooShort
    /// A call out of turn: writing when it is the other side's turn, or after completion.
    case wrongState
    /// A key of the wrong size or an unusable key (with details).
    case invalidKey(String)

    public var description: String {
        switch self {
        case .decryptFailed: return "decryption failed (authentication tag did not verify)"
        case .messageTooShort: return "message too short"
        case .wrongState: return "handshake call out of turn"
        case .invalidKey(let why): return "invalid key: \(why)"
        }
    }
}

/// Noise CipherState (spec §5.1): an optional 32-byte key and a 64-bit nonce.
public struct NoiseCipherState: Sendable {
    public let cipher: NoiseCipher
    private var key: [UInt8]?
    /// The nonce the next encrypt/decrypt uses.
    public private(set) var nonce: UInt64 = 0
    /// HasKey(): false while the state passes plaintext through.
    public var hasKey: Bool { key != nil }

    /// `key` nil gives an empty cipher state, which passes plaintext through.
    public init(cipher: NoiseCipher, key: [UInt8]?) {
        if let key { precondition(key.count == AEAD.keyLength, "Noise cipher keys are 32 bytes") }
        self.cipher = cipher
        self.key = key
    }

    /// EncryptWithAd. Traps when the nonce would reach 2^64-1 (reserved by Noise).
    public mutating func encrypt(ad: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        guard let key else { return plaintext }
        precondition(nonce < UInt64.max, "Noise nonce exhausted")
        let out = AEAD.encrypt(cipher, key: key, nonce: AEAD.nonce(cipher, counter: nonce), ad: ad, plaintext: plaintext)
        nonce += 1
        return out
    }

    /// DecryptWithAd. On failure the nonce is not advanced.
    public mutating func decrypt(ad: [UInt8], ciphertext: [UInt8]) throws -> [UInt8] {
        guard let key else { return ciphertext }
        guard nonce < UInt64.max else { throw NoiseError.wrongState }
        guard ciphertext.count >= AEAD.tagLength else { throw NoiseError.messageTooShort }
        guard let out = AEAD.decrypt(cipher, key: key, nonce: AEAD.nonce(cipher, counter: nonce), ad: ad, ciphertext: ciphertext) else {
            throw NoiseError.decryptFailed
        }
        nonce += 1
        return out
    }
}

/// Noise SymmetricState (spec §5.2) with HASH = BLAKE2b.
struct NoiseSymmetricState: Sendable {
    private(set) var ck: [UInt8]
    private(set) var h: [UInt8]
    private(set) var cipherState: NoiseCipherState

    init(protocolName: String, cipher: NoiseCipher) {
        let name = Array(protocolName.utf8)
        if name.count <= NoiseHash.hashLength {
            h = name + [UInt8](repeating: 0, count: NoiseHash.hashLength - name.count)
        } else {
            h = Blake2b.hash(name)
        }
        ck = h
        cipherState = NoiseCipherState(cipher: cipher, key: nil)
    }

    private mutating func initializeKey(_ output: [UInt8]) {
        // HASHLEN is 64: truncate to the 32-byte cipher key.
        var tempK = Array(output.prefix(AEAD.keyLength))
        cipherState = NoiseCipherState(cipher: cipherState.cipher, key: tempK)
        Sodium.zero(&tempK)
    }

    mutating func mixKey(_ ikm: [UInt8]) {
        var out = NoiseHash.hkdf(chainingKey: ck, inputKeyMaterial: ikm, outputs: 2)
        Sodium.zero(&ck)
        ck = out[0]
        initializeKey(out[1])
        Sodium.zero(&out[1])
    }

    mutating func mixHash(_ data: [UInt8]) {
        h = Blake2b.hash(h + data)
    }

    mutating func mixKeyAndHash(_ ikm: [UInt8]) {
        var out = NoiseHash.hkdf(chainingKey: ck, inputKeyMaterial: ikm, outputs: 3)
        Sodium.zero(&ck)
        ck = out[0]
        mixHash(out[1])
        initializeKey(out[2])
        Sodium.zero(&out[2])
    }

    mutating func encryptAndHash(_ plaintext: [UInt8]) -> [UInt8] {
        let ciphertext = cipherState.encrypt(ad: h, plaintext: plaintext)
        mixHash(ciphertext)
        return ciphertext
    }

    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws -> [UInt8] {
        let plaintext = try cipherState.decrypt(ad: h, ciphertext: ciphertext)
        mixHash(ciphertext)
        return plaintext
    }

    func split() -> (NoiseCipherState, NoiseCipherState) {
        var out = NoiseHash.hkdf(chainingKey: ck, inputKeyMaterial: [], outputs: 2)
        let c1 = NoiseCipherState(cipher: cipherState.cipher, key: Array(out[0].prefix(AEAD.keyLength)))
        let c2 = NoiseCipherState(cipher: cipherState.cipher, key: Array(out[1].prefix(AEAD.keyLength)))
        Sodium.zero(&out[0])
        Sodium.zero(&out[1])
        return (c1, c2)
    }
}

/// Noise HandshakeState (spec §5.3) for the patterns of `NoiseProtocol`: NN, XX and their psk
/// variants (NNpsk0 is `-> psk, e`, `<- e, ee`; XXpsk0 is `-> psk, e`, `<- e, ee, s, es`, `-> s, se`).
///
/// A failed `readMessage` leaves the state as it was before the call; Noise nevertheless expects
/// the caller to abandon a handshake after any error.
public struct NoiseHandshakeState: Sendable {
    public let noiseProtocol: NoiseProtocol
    public let initiator: Bool
    private let messagePatterns: [[NoiseToken]]
    private var symmetric: NoiseSymmetricState
    /// The PSKs still to be mixed in, in token order.
    private var psks: [[UInt8]]
    private var staticPrivate: [UInt8]?
    private var ephemeralPrivate: [UInt8]?
    private var remoteEphemeral: [UInt8]?
    /// The peer's static public key, once a message carrying it has been read and authenticated.
    public private(set) var remoteStaticPublicKey: [UInt8]?
    private var messageIndex = 0

    private var pskMode: Bool { !noiseProtocol.pskModifiers.isEmpty }

    /// A pattern with at most one psk modifier (NN, NNpsk0, XX, XXpsk0, …).
    /// - Parameters:
    ///   - psk: required (32 bytes) for a pattern with one psk modifier, must be nil without.
    ///   - staticPrivateKey: this side's 32-byte X25519 private key; required when the pattern
    ///     sends this side's static key, refused otherwise.
    ///   - ephemeralPrivateKey: 32 bytes, for test vectors only; a fresh random key otherwise.
    public init(protocol noiseProtocol: NoiseProtocol, initiator: Bool, prologue: [UInt8], psk: [UInt8]?,
                staticPrivateKey: [UInt8]? = nil, ephemeralPrivateKey: [UInt8]? = nil) throws {
        try self.init(protocol: noiseProtocol, initiator: initiator, prologue: prologue, psks: psk.map { [$0] } ?? [],
                      staticPrivateKey: staticPrivateKey, ephemeralPrivateKey: ephemeralPrivateKey)
    }

    /// Any pattern of `NoiseProtocol`: `psks` holds one 32-byte PSK per psk modifier, in order.
    public init(protocol noiseProtocol: NoiseProtocol, initiator: Bool, prologue: [UInt8], psks: [[UInt8]],
                staticPrivateKey: [UInt8]? = nil, ephemeralPrivateKey: [UInt8]? = nil) throws {
        Sodium.ensureInitialized()
        let needed = noiseProtocol.pskModifiers.count
        switch (needed, psks.count) {
        case (0, 0): break
        case (0, _): throw NoiseError.invalidKey("a PSK was given for a pattern without psk")
        case let (n, got) where got != n:
            throw NoiseError.invalidKey("\(noiseProtocol.name) needs \(n) PSK(s), got \(got)")
        default:
            if let bad = psks.first(where: { $0.count != 32 }) { throw NoiseError.invalidKey("a PSK is 32 bytes, got \(bad.count)") }
        }
        if noiseProtocol.sendsStatic(initiator: initiator) {
            guard let s = staticPrivateKey else { throw NoiseError.invalidKey("\(noiseProtocol.name) needs a static private key") }
            guard s.count == X25519.keyLength else { throw NoiseError.invalidKey("a static private key is 32 bytes, got \(s.count)") }
        } else if staticPrivateKey != nil {
            throw NoiseError.invalidKey("a static key was given for a pattern that sends none")
        }
        if let e = ephemeralPrivateKey, e.count != X25519.keyLength {
            throw NoiseError.invalidKey("an ephemeral private key is 32 bytes, got \(e.count)")
        }
        if noiseProtocol.cipher == .aesGCM && crypto_aead_aes256gcm_is_available() != 1 {
            throw NoiseError.invalidKey("AES-256-GCM is not available on this CPU")
        }
        self.noiseProtocol = noiseProtocol
        self.initiator = initiator
        messagePatterns = noiseProtocol.messages
        self.psks = psks
        staticPrivate = staticPrivateKey
        ephemeralPrivate = ephemeralPrivateKey
        symmetric = NoiseSymmetricState(protocolName: noiseProtocol.name, cipher: noiseProtocol.cipher)
        symmetric.mixHash(prologue)
    }

    public var isComplete: Bool { messageIndex >= messagePatterns.count }

    /// The current chaining key `ck` (64 bytes); after completion the input of Weft's key derivation.
    public var chainingKey: [UInt8] { symmetric.ck }

    /// The handshake hash `h` (64 bytes).
    public var handshakeHash: [UInt8] { symmetric.h }

    private var isMyTurn: Bool { (messageIndex % 2 == 0) == initiator }

    public mutating func writeMessage(payload: [UInt8]) throws -> [UInt8] {
        guard !isComplete, isMyTurn else { throw NoiseError.wrongState }
        var next = self
        var message: [UInt8] = []
        for token in messagePatterns[messageIndex] {
            switch token {
            case .e:
                if next.ephemeralPrivate == nil { next.ephemeralPrivate = Sodium.randomBytes(X25519.keyLength) }
                let pub = X25519.publicKey(privateKey: next.ephemeralPrivate!)
                message += pub
                next.symmetric.mixHash(pub)
                if pskMode { next.symmetric.mixKey(pub) }
            case .s:
                message += next.symmetric.encryptAndHash(X25519.publicKey(privateKey: next.staticPrivate!))
            case .ee, .es, .se:
                try next.mixDH(token)
            case .psk:
                next.mixNextPSK()
            }
        }
        message += next.symmetric.encryptAndHash(payload)
        next.messageIndex += 1
        self = next
        finishIfComplete()
        return message
    }

    public mutating func readMessage(_ message: [UInt8]) throws -> [UInt8] {
        guard !isComplete, !isMyTurn else { throw NoiseError.wrongState }
        var next = self
        var offset = 0
        for token in messagePatterns[messageIndex] {
            switch token {
            case .e:
                guard message.count - offset >= X25519.keyLength else { throw NoiseError.messageTooShort }
                let re = Array(message[offset..<offset + X25519.keyLength])
                offset += X25519.keyLength
                next.remoteEphemeral = re
                next.symmetric.mixHash(re)
                if pskMode { next.symmetric.mixKey(re) }
            case .s:
                let length = X25519.keyLength + (next.symmetric.cipherState.hasKey ? AEAD.tagLength : 0)
                guard message.count - offset >= length else { throw NoiseError.messageTooShort }
                next.remoteStaticPublicKey = try next.symmetric.decryptAndHash(Array(message[offset..<offset + length]))
                offset += length
            case .ee, .es, .se:
                try next.mixDH(token)
            case .psk:
                next.mixNextPSK()
            }
        }
        let payload = try next.symmetric.decryptAndHash(Array(message[offset...]))
        next.messageIndex += 1
        self = next
        finishIfComplete()
        return payload
    }

    private mutating func mixNextPSK() {
        var psk = psks.removeFirst()
        symmetric.mixKeyAndHash(psk)
        Sodium.zero(&psk)
    }

    /// `ee`, `es`, `se`: the first letter is the initiator's key, the second the responder's.
    private mutating func mixDH(_ token: NoiseToken) throws {
        let local: [UInt8]?, remote: [UInt8]?
        switch (token, initiator) {
        case (.ee, _): (local, remote) = (ephemeralPrivate, remoteEphemeral)
        case (.es, true), (.se, false): (local, remote) = (ephemeralPrivate, remoteStaticPublicKey)
        case (.es, false), (.se, true): (local, remote) = (staticPrivate, remoteEphemeral)
        default: throw NoiseError.wrongState
        }
        guard let local, let remote else { throw NoiseError.wrongState }
        var shared = try X25519.dh(privateKey: local, publicKey: remote)
        symmetric.mixKey(shared)
        Sodium.zero(&shared)
    }

    /// Drops the ephemeral and static private keys and the PSKs once they are no longer needed
    /// (best effort: copies of a value type cannot all be wiped).
    private mutating func finishIfComplete() {
        guard isComplete else { return }
        if ephemeralPrivate != nil { Sodium.zero(&ephemeralPrivate!) }
        if staticPrivate != nil { Sodium.zero(&staticPrivate!) }
        ephemeralPrivate = nil
        staticPrivate = nil
        psks = []
    }

    /// Noise Split(): the transport cipher states. Only valid once `isComplete`.
    /// (Weft's gossip link uses `LinkKeys.derive(chainingKey:)` instead; see docs/protocol.md §3.5.)
    public func split() -> (initiatorToResponder: NoiseCipherState, responderToInitiator: NoiseCipherState) {
        precondition(isComplete, "split() before the handshake is complete")
        let (c1, c2) = symmetric.split()
        return (c1, c2)
    }
}
