// CIDR ranges for --trusted-subnets, and the trust decision of docs/design.md §5.
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as an IPv4-mapped IPv6 address, ::ffff:a.b.c.d).
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let b = withUnsafeBytes(of: &v4) { Array($0) }
            bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + b
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// 16 bytes, IPv4 as ::ffff:a.b.c.d.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF }

    /// `a.b.c.d:port` or `[v6]:port`, the address text of docs/operations.md.
    public func endpoint(port: Int) -> String { isIPv4 ? "\(self):\(port)" : "[\(self)]:\(port)" }

    public var description: String {
        if isIPv4 { return bytes[12...].map(String.init).joined(separator: ".") }
        var addr = in6_addr()
        withUnsafeMutableBytes(of: &addr) { $0.copyBytes(from: bytes) }
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(AF_INET6, &addr, &out, socklen_t(out.count))
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A CIDR range such as 10.0.0.0/8 or fd00::/8.
public struct Subnet: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    /// Prefix length counted over the 128-bit form (an IPv4 /8 is stored as /104).
    private let bits: Int
    public let text: String

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case malformed(String)
        /// An address inside the range rather than the range (10.66.0.5/24): refused as `ip route`
        /// refuses it, naming the network meant.
        case hostBitsSet(String, network: String)
        public var description: String {
            switch self {
            case .malformed(let text): return "'\(text)' is not a CIDR range: write it like 10.0.0.0/8 or fd00::/8"
            case .hostBitsSet(let text, let network): return "'\(text)' has host bits set: did you mean \(network)?"
            }
        }
    }

    public init(_ text: String) throws {
        let trimmed = trimmingBlanks(text)
        let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let prefix = Int(parts[1]), prefix >= 0 else {
            throw ParseError.malformed(text)
        }
        let maxPrefix = address.isIPv4 ? 32 : 128
        guard prefix <= maxPrefix else { throw ParseError.malformed(text) }
        let bits = address.isIPv4 ? prefix + 96 : prefix
        var network = address.bytes
        for bit in bits..<128 { network[bit / 8] &= ~(0x80 >> UInt8(bit % 8)) }
        guard network == address.bytes else {
            throw ParseError.hostBitsSet(text, network: "\(IPAddress(bytes: network)!)/\(prefix)")
        }
        self.address = address
        self.bits = bits
        self.text = trimmed
    }

    public func contains(_ other: IPAddress) -> Bool {
        guard other.isIPv4 == address.isIPv4 else { return false }
        var remaining = bits
        for i in 0..<16 where remaining > 0 {
            let take = min(8, remaining)
            let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
            if other.bytes[i] & mask != address.bytes[i] & mask { return false }
            remaining -= take
        }
        return true
    }

    public var description: String { text }

    /// Prefix length within the family (an IPv4 /8 is 8).
    public var prefixLength: Int { address.isIPv4 ? bits - 96 : bits }

    /// Parses a comma-separated list; the error names the first bad entry.
    public static func parseList(_ text: String) throws -> [Subnet] {
        try text.split(separator: ",").map { try Subnet(String($0)) }
    }
}

/// Drops spaces and tabs at both ends (operators write "10.0.0.0/8, 192.168.0.0/16").
func trimmingBlanks(_ text: String) -> String {
    var s = Substring(text)
    while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
    while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
    return String(s)
}

/// The link-level decisions of docs/design.md §5 that the gossip link already needs.
public enum LinkPolicy {
    /// A link is trusted only when both ends say they trust the other's address.
    public static func trusted(localTrustsRemote: Bool, remoteTrustsLocal: Bool) -> Bool {
        localTrustsRemote && remoteTrustsLocal
    }

    /// Data to this peer is encrypted when a password is set and the link is not mutually trusted.
    public static func encrypted(passwordSet: Bool, trusted: Bool) -> Bool { passwordSet && !trusted }
}
