// Session rekeying on an established link (docs/protocol.md §3.7): a fresh X25519 exchange over
// the sealed gossip link, mixed into the previous chaining key, optionally with a PSK so a link
// moves to a new network password without reconnecting.

/// One side's ephemeral key for a rekey; the private half never leaves this process.
public struct RekeyEphemeral: Sendable {
    let privateKey: [UInt8]
    public let publicKey: [UInt8]

    public init() {
        privateKey = Sodium.randomBytes(X25519.keyLength)
        publicKey = X25519.publicKey(privateKey: privateKey)
    }

    /// For test vectors only.
    public init(privateKey: [UInt8]) {
        precondition(privateKey.count == X25519.keyLength)
        self.privateKey = privateKey
        publicKey = X25519.publicKey(privateKey: privateKey)
    }
}

public enum Rekey {
    public static let label = Array("weft rekey".utf8)

    /// ck' = first output of HKDF(ck, "weft rekey" ‖ DH(ours, theirs) ‖ psk), 64 bytes; `psk`
    /// empty when the link keeps its password. Throws on a low-order public key.
    public static func nextChainingKey(_ chainingKey: [UInt8], ours: RekeyEphemeral, theirPublicKey: [UInt8], psk: [UInt8]) throws -> [UInt8] {
        let shared = try X25519.dh(privateKey: ours.privateKey, publicKey: theirPublicKey)
        return NoiseHash.hkdf(chainingKey: chainingKey, inputKeyMaterial: label + shared + psk, outputs: 2)[0]
    }
}
