// In-place sealing of data-plane packets (docs/protocol.md §5): the body is encrypted where it
// lies, the header is the associated data, the tag follows the body. No allocation per packet;
// safe to call from several threads at once (the key material is read-only after init, the
// counter is the caller's). AES-256-GCM runs from libsodium's precomputed state (expanded key and
// GHASH table, made once per key); ChaCha20-Poly1305 uses the raw key, as it has no such state.
import CSodium

public final class PacketKey: @unchecked Sendable {  // immutable after init
    public let cipher: DataCipher
    /// The key material, owned by this object alone: for ChaCha20-Poly1305 the 32 key bytes, for
    /// AES-256-GCM the crypto_aead_aes256gcm_state made from them by beforenm (16-byte aligned,
    /// as libsodium requires). Made in init, read by every seal and open, wiped and freed in
    /// deinit. A rekey makes a new PacketKey with its own material; the old one stays valid for
    /// the threads that still hold it until the last reference is dropped.
    private let material: UnsafeMutableRawPointer
    private let materialSize: Int

    public init(cipher: DataCipher, key bytes: [UInt8]) {
        precondition(bytes.count == 32, "a packet key is 32 bytes")
        Sodium.ensureInitialized()
        self.cipher = cipher
        switch cipher {
        case .chaCha20Poly1305:
            materialSize = 32
            material = .allocate(byteCount: materialSize, alignment: 16)
            material.copyMemory(from: bytes, byteCount: 32)
        case .aes256GCM:
            materialSize = crypto_aead_aes256gcm_statebytes()
            material = .allocate(byteCount: materialSize, alignment: 16)
            let state = material.bindMemory(to: crypto_aead_aes256gcm_state.self, capacity: 1)
            // Only fails when the CPU lacks AES-NI, which DataCipher.allowedOnThisCPU rules out.
            let rc = crypto_aead_aes256gcm_beforenm(state, bytes)
            precondition(rc == 0, "AES-256-GCM is not available on this CPU")
        }
    }

    deinit {
        sodium_memzero(material, materialSize)
        material.deallocate()
    }

    @inline(__always)
    private var chaChaKey: UnsafePointer<UInt8> { UnsafePointer(material.assumingMemoryBound(to: UInt8.self)) }

    @inline(__always)
    private var aesState: UnsafePointer<crypto_aead_aes256gcm_state> {
        UnsafePointer(material.assumingMemoryBound(to: crypto_aead_aes256gcm_state.self))
    }

    /// Encrypts `bodyLength` bytes at `packet + headerLength` in place with the first
    /// `headerLength` bytes as associated data, and writes the 16-byte tag after the body.
    /// The caller guarantees 16 bytes of room after the body. Returns the sealed length.
    @inline(__always)
    public func seal(_ packet: UnsafeMutableRawPointer, headerLength: Int, bodyLength: Int, counter: UInt64) -> Int {
        var nonce = Self.nonce(counter)
        let body = (packet + headerLength).assumingMemoryBound(to: UInt8.self)
        let tag = body + bodyLength
        let ad = packet.assumingMemoryBound(to: UInt8.self)
        withUnsafeBytes(of: &nonce) { n in
            let np = n.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch cipher {
            case .chaCha20Poly1305:
                _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(body, tag, nil, body, UInt64(bodyLength), ad, UInt64(headerLength), nil, np, chaChaKey)
            case .aes256GCM:
                _ = crypto_aead_aes256gcm_encrypt_detached_afternm(body, tag, nil, body, UInt64(bodyLength), ad, UInt64(headerLength), nil, np, aesState)
            }
        }
        return headerLength + bodyLength + 16
    }

    /// Verifies and decrypts a sealed packet of `length` bytes in place. Returns the body
    /// length, or -1 when the packet is too short or the tag does not verify (the body is then
    /// left undefined and must be dropped).
    @inline(__always)
    public func open(_ packet: UnsafeMutableRawPointer, headerLength: Int, length: Int, counter: UInt64) -> Int {
        let bodyLength = length - headerLength - 16
        guard bodyLength >= 0 else { return -1 }
        var nonce = Self.nonce(counter)
        let body = (packet + headerLength).assumingMemoryBound(to: UInt8.self)
        let tag = body + bodyLength
        let ad = packet.assumingMemoryBound(to: UInt8.self)
        let rc = withUnsafeBytes(of: &nonce) { n -> Int32 in
            let np = n.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch cipher {
            case .chaCha20Poly1305:
                return crypto_aead_chacha20poly1305_ietf_decrypt_detached(body, nil, body, UInt64(bodyLength), tag, ad, UInt64(headerLength), np, chaChaKey)
            case .aes256GCM:
                return crypto_aead_aes256gcm_decrypt_detached_afternm(body, nil, body, UInt64(bodyLength), tag, ad, UInt64(headerLength), np, aesState)
            }
        }
        return rc == 0 ? bodyLength : -1
    }

    /// 4 zero bytes, then the counter little-endian (as the Noise ChaChaPoly nonce).
    @inline(__always)
    static func nonce(_ counter: UInt64) -> (UInt32, UInt32, UInt32) {
        (0, UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
    }
}
