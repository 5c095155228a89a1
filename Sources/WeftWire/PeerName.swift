// A router's stable identity: 6 bytes written like a MAC address (docs/protocol.md §1).

public struct PeerName: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The 6 bytes packed into the low 48 bits; comparison of the integers is bytewise order.
    public let value: UInt64

    public init(value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 6, "a peer name is 6 bytes")
        var v: UInt64 = 0
        for b in bytes { v = (v << 8) | UInt64(b) }
        self.init(value: v)
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (case-insensitive); nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var v: UInt64 = 0
        for part in parts {
            guard part.count == 2, let b = UInt8(part, radix: 16) else { return nil }
            v = (v << 8) | UInt64(b)
        }
        self.init(value: v)
    }

    /// A new random name with the locally-administered bit set and the multicast bit clear.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> PeerName {
        var b = (0..<6).map { _ in UInt8.random(in: 0...255, using: &generator) }
        b[0] = (b[0] & 0xFC) | 0x02
        return PeerName(bytes: b)
    }

    public var bytes: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: value >> (UInt64(5 - $0) * 8)) } }

    public var description: String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public static func < (a: PeerName, b: PeerName) -> Bool { a.value < b.value }

    // Names key the topology's tables, so every gossip entry merged hashes several. The 48 bits
    // go to the hasher as one word, by the one-shot path UInt64's own hash uses (still seeded
    // SipHash: names come from the network), instead of a Hasher built, fed and finalized per
    // lookup. Both must agree, as Hashable requires.
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
    public func _rawHashValue(seed: Int) -> Int { value._rawHashValue(seed: seed) }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let name = PeerName(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "peer name must look like aa:bb:cc:dd:ee:ff"))
        }
        self = name
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension ByteReader {
    public mutating func peerName(_ what: String) throws -> PeerName { PeerName(value: try u48(what)) }
}

extension ByteWriter {
    public mutating func peerName(_ name: PeerName) { u48(name.value) }
}
