import CSodium

public enum NoiseCipher: Sendable {
    case chaChaPoly, aesGCM
}

public enum NoisePattern: Sendable {
    case nn, nnpsk0
}

/// The Noise protocols WeftCrypto implements: NN and NNpsk0 over 25519, ChaChaPoly or AESGCM, BLAKE2b.
public struct NoiseProtocol: Sendable, Equatable {
    public let pattern: NoisePattern
    public let cipher: NoiseCipher
    public let name: String

    /// Accepts exactly `Noise_{NN,NNpsk0}_25519_{ChaChaPoly,AESGCM}_BLAKE2b`; nil otherwise.
    public init?(name: String) {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "Noise", parts[2] == "25519", parts[4] == "BLAKE2b" else { return nil }
        switch parts[1] {
        case "NN": pattern = .nn
        case "NNpsk0": pattern = .nnpsk0
        default: return nil
        }
        switch parts[3] {
        case "ChaChaPoly": cipher = .chaChaPoly
        case "AESGCM": cipher = .aesGCM
        default: return nil
        }
        self.name = name
    }

    /// The gossip link's handshake (docs/protocol.md §3.3).
    public static let weftLink = NoiseProtocol(name: "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b")!
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

/// Noise HandshakeState (spec §5.3) for NN (`-> e`, `<- e, ee`) and NNpsk0 (`-> psk, e`, `<- e, ee`).
///
/// A failed `readMessage` leaves the state as it was before the call; Noise nevertheless expects
/// the caller to abandon a handshake after any error.
public struct NoiseHandshakeState: Sendable {
    private enum Token { case e, ee, psk }

    public let noiseProtocol: NoiseProtocol
    public let initiator: Bool
    private var symmetric: NoiseSymmetricState
    private var psk: [UInt8]?
    private var ephemeralPrivate: [UInt8]?
    private var remoteEphemeral: [UInt8]?
    private var messageIndex = 0

    private var messagePatterns: [[Token]] {
        switch noiseProtocol.pattern {
        case .nn: return [[.e], [.e, .ee]]
        case .nnpsk0: return [[.psk, .e], [.e, .ee]]
        }
    }

    private var pskMode: Bool { noiseProtocol.pattern == .nnpsk0 }

    /// - Parameters:
    ///   - psk: required (32 bytes) for NNpsk0, must be nil for NN.
    ///   - ephemeralPrivateKey: 32 bytes, for test vectors only; a fresh random key otherwise.
    public init(protocol noiseProtocol: NoiseProtocol, initiator: Bool, prologue: [UInt8], psk: [UInt8]?,
                ephemeralPrivateKey: [UInt8]? = nil) throws {
        Sodium.ensureInitialized()
        switch noiseProtocol.pattern {
        case .nn:
            guard psk == nil else { throw NoiseError.invalidKey("a PSK was given for a pattern without psk") }
        case .nnpsk0:
            guard let psk else { throw NoiseError.invalidKey("NNpsk0 needs a PSK") }
            guard psk.count == 32 else { throw NoiseError.invalidKey("a PSK is 32 bytes, got \(psk.count)") }
        }
        if let e = ephemeralPrivateKey, e.count != X25519.keyLength {
            throw NoiseError.invalidKey("an ephemeral private key is 32 bytes, got \(e.count)")
        }
        if noiseProtocol.cipher == .aesGCM && crypto_aead_aes256gcm_is_available() != 1 {
            throw NoiseError.invalidKey("AES-256-GCM is not available on this CPU")
        }
        self.noiseProtocol = noiseProtocol
        self.initiator = initiator
        self.psk = psk
        self.ephemeralPrivate = ephemeralPrivateKey
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
            case .ee:
                try next.mixDH()
            case .psk:
                next.symmetric.mixKeyAndHash(next.psk!)
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
            case .ee:
                try next.mixDH()
            case .psk:
                next.symmetric.mixKeyAndHash(next.psk!)
            }
        }
        let payload = try next.symmetric.decryptAndHash(Array(message[offset...]))
        next.messageIndex += 1
        self = next
        finishIfComplete()
        return payload
    }

    private mutating func mixDH() throws {
        guard let e = ephemeralPrivate, let re = remoteEphemeral else { throw NoiseError.wrongState }
        var shared = try X25519.dh(privateKey: e, publicKey: re)
        symmetric.mixKey(shared)
        Sodium.zero(&shared)
    }

    /// Drops the ephemeral private key and the PSK once they are no longer needed (best effort:
    /// copies of a value type cannot all be wiped).
    private mutating func finishIfComplete() {
        guard isComplete else { return }
        if ephemeralPrivate != nil { Sodium.zero(&ephemeralPrivate!) }
        ephemeralPrivate = nil
        psk = nil
    }

    /// Noise Split(): the transport cipher states. Only valid once `isComplete`.
    /// (Weft's gossip link uses `LinkKeys.derive(chainingKey:)` instead; see docs/protocol.md §3.5.)
    public func split() -> (initiatorToResponder: NoiseCipherState, responderToInitiator: NoiseCipherState) {
        precondition(isComplete, "split() before the handshake is complete")
        let (c1, c2) = symmetric.split()
        return (c1, c2)
    }
}
