import CSodium

/// Names a PSK without revealing it: the first 8 bytes of BLAKE2b-256("weft psk id v1" ‖ PSK)
/// (docs/protocol.md §2). Written and encoded as 16 lowercase hex digits.
public struct PSKID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public static let length = 8
    public let bytes: [UInt8]

    /// Traps unless `bytes` has exactly 8 bytes.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == PSKID.length, "a PSK id is 8 bytes")
        self.bytes = bytes
    }

    /// 16 hex digits (either case); nil otherwise.
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex), bytes.count == PSKID.length else { return nil }
        self.bytes = bytes
    }

    /// Eight zero bytes: what the preamble carries without a password.
    public static let zero = PSKID(bytes: [UInt8](repeating: 0, count: PSKID.length))

    public var description: String { Hex.encode(bytes) }

    public static func < (lhs: PSKID, rhs: PSKID) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = PSKID(hex: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "a PSK id is 16 hex digits, got \"\(text)\"")
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A 32-byte pre-shared key and its id.
public struct PreSharedKey: Sendable {
    public let key: [UInt8]
    public let id: PSKID

    /// Enforced by the CLI, not by `derive(password:)`.
    public static let minimumPasswordLength = 12

    /// The Argon2id parameters of docs/protocol.md §2.
    public static let salt: [UInt8] = Array("weft-psk-salt-v1".utf8)
    public static let opsLimit: UInt64 = 3
    public static let memLimit = 33_554_432

    /// Stretches `password` (its UTF-8 bytes, unnormalized) with Argon2id13. Takes ~0.1 s and 32 MiB.
    /// Throws `invalidKey` only if libsodium fails (out of memory).
    public static func derive(password: String) throws -> PreSharedKey {
        Sodium.ensureInitialized()
        // A trailing NUL keeps the buffer non-empty for an empty password; it is not hashed.
        var passwordBytes = Array(password.utf8) + [0]
        defer { Sodium.zero(&passwordBytes) }
        var out = [UInt8](repeating: 0, count: 32)
        defer { Sodium.zero(&out) }
        let rc = out.withUnsafeMutableBufferPointer { o in
            passwordBytes.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { pc in
                    salt.withUnsafeBufferPointer { s in
                        crypto_pwhash(o.baseAddress!, UInt64(o.count), pc.baseAddress!, UInt64(pc.count - 1),
                                      s.baseAddress!, opsLimit, memLimit, crypto_pwhash_ALG_ARGON2ID13)
                    }
                }
            }
        }
        guard rc == 0 else { throw NoiseError.invalidKey("Argon2id failed (out of memory?)") }
        return PreSharedKey(key: out)
    }

    /// A PSK of 32 random bytes, for a rotation given no password (`weft revoke`, docs/protocol.md
    /// §3.11): there is no password text to stretch, so none is made up.
    public static func generate() -> PreSharedKey {
        Sodium.ensureInitialized()
        return PreSharedKey(key: Sodium.randomBytes(32))
    }

    /// Traps unless `key` has 32 bytes.
    public init(key: [UInt8]) {
        precondition(key.count == 32, "a PSK is 32 bytes")
        self.key = key
        self.id = PSKID(bytes: Array(Blake2b.hash(Array("weft psk id v1".utf8) + key, outputLength: 32).prefix(PSKID.length)))
    }
}

/// The four per-link keys derived from the handshake's chaining key (docs/protocol.md §3.5).
public struct LinkKeys: Sendable {
    public let tcpInitiatorToResponder: [UInt8]
    public let tcpResponderToInitiator: [UInt8]
    public let udpInitiatorToResponder: [UInt8]
    public let udpResponderToInitiator: [UInt8]

    public static let labels = (
        tcpInitiatorToResponder: "weft tcp initiator->responder",
        tcpResponderToInitiator: "weft tcp responder->initiator",
        udpInitiatorToResponder: "weft udp initiator->responder",
        udpResponderToInitiator: "weft udp responder->initiator"
    )

    /// Each key is the first 32 bytes of the first output of the Noise `HKDF(ck, label, 2)`.
    public static func derive(chainingKey: [UInt8]) -> LinkKeys {
        func key(_ label: String) -> [UInt8] {
            var out = NoiseHash.hkdf(chainingKey: chainingKey, inputKeyMaterial: Array(label.utf8), outputs: 2)
            let k = Array(out[0].prefix(32))
            Sodium.zero(&out[0])
            Sodium.zero(&out[1])
            return k
        }
        return LinkKeys(tcpInitiatorToResponder: key(labels.tcpInitiatorToResponder),
                        tcpResponderToInitiator: key(labels.tcpResponderToInitiator),
                        udpInitiatorToResponder: key(labels.udpInitiatorToResponder),
                        udpResponderToInitiator: key(labels.udpResponderToInitiator))
    }

    public init(tcpInitiatorToResponder: [UInt8], tcpResponderToInitiator: [UInt8],
                udpInitiatorToResponder: [UInt8], udpResponderToInitiator: [UInt8]) {
        self.tcpInitiatorToResponder = tcpInitiatorToResponder
        self.tcpResponderToInitiator = tcpResponderToInitiator
        self.udpInitiatorToResponder = udpInitiatorToResponder
        self.udpResponderToInitiator = udpResponderToInitiator
    }
}

/// Seals gossip-link frames (docs/protocol.md §3.6): ChaCha20-Poly1305-IETF, empty ad,
/// nonce = 4 zero bytes ‖ counter (u64 little-endian), counter from 0, +1 per frame.
public struct LinkSealer: Sendable {
    private let key: [UInt8]
    /// The counter the next frame is sealed with.
    public private(set) var counter: UInt64 = 0

    public init(key: [UInt8]) {
        precondition(key.count == 32, "a link key is 32 bytes")
        Sodium.ensureInitialized()
        self.key = key
    }

    /// Ciphertext ‖ 16-byte tag. Traps if the counter would reach 2^64-1.
    public mutating func seal(_ plaintext: [UInt8]) -> [UInt8] {
        precondition(counter < UInt64.max, "link counter exhausted")
        let out = AEAD.encrypt(.chaChaPoly, key: key, nonce: AEAD.nonce(.chaChaPoly, counter: counter), ad: [], plaintext: plaintext)
        counter += 1
        return out
    }
}

/// Opens frames sealed by the peer's `LinkSealer`, strictly in order.
public struct LinkOpener: Sendable {
    private let key: [UInt8]
    /// The counter the next frame must have been sealed with.
    public private(set) var counter: UInt64 = 0

    public init(key: [UInt8]) {
        precondition(key.count == 32, "a link key is 32 bytes")
        Sodium.ensureInitialized()
        self.key = key
    }

    /// Throws `NoiseError.decryptFailed` when the frame does not verify (tampered, reordered,
    /// replayed, truncated); the counter then does not advance.
    public mutating func open(_ ciphertext: [UInt8]) throws -> [UInt8] {
        guard counter < UInt64.max,
              let out = AEAD.decrypt(.chaChaPoly, key: key, nonce: AEAD.nonce(.chaChaPoly, counter: counter), ad: [], ciphertext: ciphertext)
        else { throw NoiseError.decryptFailed }
        counter += 1
        return out
    }
}

/// The data-plane ciphers a router may negotiate (hello, docs/protocol.md §3.4).
public enum DataCipher: String, Sendable, Codable {
    case chaCha20Poly1305 = "chacha20-poly1305"
    case aes256GCM = "aes-256-gcm"

    /// libsodium's AES-256-GCM needs AES-NI and PCLMUL.
    public static var aesGCMAvailable: Bool {
        Sodium.ensureInitialized()
        return crypto_aead_aes256gcm_is_available() == 1
    }

    /// Its bit in the hello's "data ciphers" field (§3.4).
    public var helloBit: UInt8 {
        switch self {
        case .chaCha20Poly1305: 0b01
        case .aes256GCM: 0b10
        }
    }

    /// The ciphers this CPU can run: what the hello offers and what `weft version` reports.
    public static var allowedOnThisCPU: [DataCipher] {
        aesGCMAvailable ? [.chaCha20Poly1305, .aes256GCM] : [.chaCha20Poly1305]
    }

    /// The hello's "data ciphers" field for `ciphers`.
    public static func helloBits(_ ciphers: [DataCipher]) -> UInt8 {
        ciphers.reduce(0) { $0 | $1.helloBit }
    }
}

/// Lowercase hex encoding and strict decoding.
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for an odd length or a non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
