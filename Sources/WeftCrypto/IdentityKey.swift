// A router's long-term X25519 key pair (its identity, protocol version 2), the bytes of
// `<data-dir>/identity.key` and the fingerprint operators see; the file I/O is in WeftRouter.
import Foundation

public struct IdentityKey: Sendable, Equatable, CustomStringConvertible {
    public let publicKey: [UInt8]
    /// Never logged or shown; only the handshake reads it.
    public let privateKey: [UInt8]

    public init(privateKey: [UInt8]) throws {
        guard privateKey.count == X25519.keyLength else {
            throw IdentityKeyError("the private key is \(privateKey.count) bytes, not \(X25519.keyLength)")
        }
        self.privateKey = privateKey
        publicKey = X25519.publicKey(privateKey: privateKey)
    }

    /// A new key pair from libsodium's CSPRNG.
    public static func generate() -> IdentityKey {
        try! IdentityKey(privateKey: Sodium.randomBytes(X25519.keyLength))
    }

    public var fingerprint: String { IdentityKey.fingerprint(publicKey: publicKey) }

    /// The fingerprint only, so that printing a key never prints its private half.
    public var description: String { "identity \(fingerprint)" }

    /// 32 lowercase hex digits: BLAKE2b with a 16-byte output over `weft identity v1` ‖ the public
    /// key (Keys/README.md). It names a key for people (status, logs); routers compare whole keys.
    public static func fingerprint(publicKey: [UInt8]) -> String {
        Hex.encode(Blake2b.hash(Array("weft identity v1".utf8) + publicKey, outputLength: 16))
    }

    /// The 6 bytes of the peer name this key gives (docs/protocol.md §1): the first 6 bytes of
    /// BLAKE2b-256(`weft peer name v1` ‖ public key), then the locally administered bit set and the
    /// multicast bit cleared, as for any peer name.
    public var peerNameBytes: [UInt8] { IdentityKey.peerNameBytes(publicKey: publicKey) }

    public static func peerNameBytes(publicKey: [UInt8]) -> [UInt8] {
        var name = Array(Blake2b.hash(Array("weft peer name v1".utf8) + publicKey, outputLength: 32).prefix(6))
        name[0] = (name[0] & 0xFC) | 0x02
        return name
    }

    // MARK: the file

    private struct File: Codable {
        var format: Int
        var type: String
        var publicKey: String
        var privateKey: String
    }

    public static let fileFormat = 1
    public static let keyType = "x25519"

    /// The contents of identity.key (Keys/README.md): JSON, keys sorted, a final newline.
    public func fileBytes() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let file = File(format: IdentityKey.fileFormat, type: IdentityKey.keyType,
                        publicKey: Hex.encode(publicKey), privateKey: Hex.encode(privateKey))
        return [UInt8](try! encoder.encode(file)) + [UInt8(ascii: "\n")]
    }

    /// Reads identity.key; anything but a well-formed file whose public key matches its private
    /// key is refused, with what is wrong.
    public init(fileBytes: [UInt8]) throws {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(fileBytes))
        } catch {
            throw IdentityKeyError("not an identity key file (JSON with format, type, publicKey, privateKey)")
        }
        guard file.format == IdentityKey.fileFormat else { throw IdentityKeyError("unknown format \(file.format) (this weft reads \(IdentityKey.fileFormat))") }
        guard file.type == IdentityKey.keyType else { throw IdentityKeyError("key type \(file.type), expected \(IdentityKey.keyType)") }
        guard let privateKey = Hex.decode(file.privateKey), privateKey.count == X25519.keyLength else {
            throw IdentityKeyError("privateKey is not \(X25519.keyLength) bytes of hex")
        }
        guard let publicKey = Hex.decode(file.publicKey), publicKey.count == X25519.keyLength else {
            throw IdentityKeyError("publicKey is not \(X25519.keyLength) bytes of hex")
        }
        try self.init(privateKey: privateKey)
        guard self.publicKey == publicKey else { throw IdentityKeyError("publicKey does not belong to privateKey (the file is damaged)") }
    }
}

public struct IdentityKeyError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
