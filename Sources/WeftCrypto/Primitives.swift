import CSodium

/// One-time libsodium initialization. Every public API of WeftCrypto calls `ensureInitialized()`.
public enum Sodium {
    /// Swift runs a static stored property's initializer exactly once, thread-safely.
    private static let initResult: Int32 = sodium_init()

    public static func ensureInitialized() {
        // sodium_init returns 0 on success, 1 when already initialized, -1 on failure.
        precondition(initResult >= 0, "sodium_init failed")
    }

    /// Overwrites `bytes` with zeros in a way the optimizer does not remove.
    static func zero(_ bytes: inout [UInt8]) {
        let count = bytes.count
        bytes.withUnsafeMutableBytes { buf in
            if let base = buf.baseAddress { sodium_memzero(base, count) }
        }
    }

    /// `count` bytes from libsodium's CSPRNG.
    static func randomBytes(_ count: Int) -> [UInt8] {
        ensureInitialized()
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return out
    }
}

/// Unkeyed BLAKE2b (libsodium `crypto_generichash`).
public enum Blake2b {
    /// - Parameter outputLength: 16…64 bytes.
    public static func hash(_ data: [UInt8], outputLength: Int = 64) -> [UInt8] {
        Sodium.ensureInitialized()
        precondition(outputLength >= Int(crypto_generichash_BYTES_MIN) && outputLength <= Int(crypto_generichash_BYTES_MAX),
                     "BLAKE2b output length out of range")
        var out = [UInt8](repeating: 0, count: outputLength)
        let rc = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { d in
                crypto_generichash(o.baseAddress!, outputLength, d.baseAddress, UInt64(d.count), nil, 0)
            }
        }
        precondition(rc == 0, "crypto_generichash failed")
        return out
    }
}

/// HMAC-BLAKE2b (RFC 2104 with B = 128, L = 64) and the Noise HKDF on top of it
/// (Noise specification revision 34, section 4.3).
public enum NoiseHash {
    public static let hashLength = 64
    public static let blockLength = 128

    public static func hmac(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var k = key.count > blockLength ? Blake2b.hash(key) : key
        k.append(contentsOf: repeatElement(0, count: blockLength - k.count))
        var inner = [UInt8](repeating: 0, count: blockLength + data.count)
        var outer = [UInt8](repeating: 0, count: blockLength + hashLength)
        for i in 0..<blockLength {
            inner[i] = k[i] ^ 0x36
            outer[i] = k[i] ^ 0x5c
        }
        inner.replaceSubrange(blockLength..., with: data)
        var innerHash = Blake2b.hash(inner)
        outer.replaceSubrange(blockLength..., with: innerHash)
        let result = Blake2b.hash(outer)
        Sodium.zero(&k)
        Sodium.zero(&inner)
        Sodium.zero(&outer)
        Sodium.zero(&innerHash)
        return result
    }

    /// Noise HKDF: `temp = HMAC(ck, ikm)`, `out1 = HMAC(temp, 0x01)`, `outN = HMAC(temp, outN-1 ‖ N)`.
    /// Noise uses 2 or 3 outputs; any count from 1 to 255 is accepted. Each output is 64 bytes.
    public static func hkdf(chainingKey: [UInt8], inputKeyMaterial: [UInt8], outputs: Int) -> [[UInt8]] {
        precondition(outputs >= 1 && outputs <= 255, "HKDF output count out of range")
        var temp = hmac(key: chainingKey, data: inputKeyMaterial)
        var result: [[UInt8]] = []
        result.reserveCapacity(outputs)
        var previous: [UInt8] = []
        for i in 1...outputs {
            previous = hmac(key: temp, data: previous + [UInt8(i)])
            result.append(previous)
        }
        Sodium.zero(&temp)
        return result
    }
}

/// X25519 (libsodium `crypto_scalarmult_curve25519`).
enum X25519 {
    static let keyLength = 32

    static func publicKey(privateKey: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        precondition(privateKey.count == keyLength)
        var out = [UInt8](repeating: 0, count: keyLength)
        let rc = out.withUnsafeMutableBufferPointer { o in
            privateKey.withUnsafeBufferPointer { crypto_scalarmult_curve25519_base(o.baseAddress!, $0.baseAddress!) }
        }
        precondition(rc == 0, "crypto_scalarmult_curve25519_base failed")
        return out
    }

    /// Throws `invalidKey` when the result is all zeros (a low-order remote public key).
    static func dh(privateKey: [UInt8], publicKey: [UInt8]) throws -> [UInt8] {
        Sodium.ensureInitialized()
        guard privateKey.count == keyLength, publicKey.count == keyLength else {
            throw NoiseError.invalidKey("X25519 keys are 32 bytes")
        }
        var out = [UInt8](repeating: 0, count: keyLength)
        let rc = out.withUnsafeMutableBufferPointer { o in
            privateKey.withUnsafeBufferPointer { s in
                publicKey.withUnsafeBufferPointer { p in
                    crypto_scalarmult_curve25519(o.baseAddress!, s.baseAddress!, p.baseAddress!)
                }
            }
        }
        guard rc == 0 else { throw NoiseError.invalidKey("X25519 with a low-order public key") }
        return out
    }
}

/// The two AEADs, with a 32-byte key, a 12-byte nonce and a 16-byte tag appended to the ciphertext.
enum AEAD {
    static let keyLength = 32
    static let tagLength = 16

    static func encrypt(_ cipher: NoiseCipher, key: [UInt8], nonce: [UInt8], ad: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        precondition(key.count == keyLength && nonce.count == 12)
        var out = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        var outLength: UInt64 = 0
        let rc = out.withUnsafeMutableBufferPointer { o in
            plaintext.withUnsafeBufferPointer { m in
                ad.withUnsafeBufferPointer { a in
                    nonce.withUnsafeBufferPointer { n in
                        key.withUnsafeBufferPointer { k in
                            switch cipher {
                            case .chaChaPoly:
                                return crypto_aead_chacha20poly1305_ietf_encrypt(
                                    o.baseAddress!, &outLength, m.baseAddress, UInt64(m.count),
                                    a.baseAddress, UInt64(a.count), nil, n.baseAddress!, k.baseAddress!)
                            case .aesGCM:
                                precondition(crypto_aead_aes256gcm_is_available() == 1, "AES-256-GCM is not available on this CPU")
                                return crypto_aead_aes256gcm_encrypt(
                                    o.baseAddress!, &outLength, m.baseAddress, UInt64(m.count),
                                    a.baseAddress, UInt64(a.count), nil, n.baseAddress!, k.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        precondition(rc == 0 && outLength == UInt64(out.count), "AEAD encryption failed")
        return out
    }

    /// Returns nil when the tag does not verify (or the input is shorter than a tag).
    static func decrypt(_ cipher: NoiseCipher, key: [UInt8], nonce: [UInt8], ad: [UInt8], ciphertext: [UInt8]) -> [UInt8]? {
        Sodium.ensureInitialized()
        precondition(key.count == keyLength && nonce.count == 12)
        guard ciphertext.count >= tagLength else { return nil }
        var out = [UInt8](repeating: 0, count: ciphertext.count - tagLength)
        var outLength: UInt64 = 0
        let rc = out.withUnsafeMutableBufferPointer { o in
            ciphertext.withUnsafeBufferPointer { c in
                ad.withUnsafeBufferPointer { a in
                    nonce.withUnsafeBufferPointer { n in
                        key.withUnsafeBufferPointer { k in
                            switch cipher {
                            case .chaChaPoly:
                                return crypto_aead_chacha20poly1305_ietf_decrypt(
                                    o.baseAddress, &outLength, nil, c.baseAddress!, UInt64(c.count),
                                    a.baseAddress, UInt64(a.count), n.baseAddress!, k.baseAddress!)
                            case .aesGCM:
                                precondition(crypto_aead_aes256gcm_is_available() == 1, "AES-256-GCM is not available on this CPU")
                                return crypto_aead_aes256gcm_decrypt(
                                    o.baseAddress, &outLength, nil, c.baseAddress!, UInt64(c.count),
                                    a.baseAddress, UInt64(a.count), n.baseAddress!, k.baseAddress!)
                            }
                        }
                    }
                }
            }
        }
        guard rc == 0 else { return nil }
        precondition(outLength == UInt64(out.count))
        return out
    }

    /// Noise nonce layout: 4 zero bytes, then the 64-bit counter, little-endian for ChaChaPoly and
    /// big-endian for AESGCM.
    static func nonce(_ cipher: NoiseCipher, counter: UInt64) -> [UInt8] {
        var n = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 {
            let byte = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(i)))
            switch cipher {
            case .chaChaPoly: n[4 + i] = byte
            case .aesGCM: n[11 - i] = byte
            }
        }
        return n
    }
}
