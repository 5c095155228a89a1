// The address range workloads are given addresses from (`--ipalloc-range`), cut into equal
// blocks: the unit of ownership between routers (docs/protocol.md §7).
import WeftWire

/// A CIDR range of IPv4 or IPv6 addresses, addresses named by their offset from its start.
public struct AddressRange: Hashable, Sendable, CustomStringConvertible {
    /// At most this many blocks: few enough that the ownership ledger stays small, enough that
    /// a thousand routers each own some.
    public static let maxBlocks = 4096
    /// Host bits bounds: a /29 (8 addresses, 2 blocks of 4) up to 64 host bits (an IPv6 /64).
    public static let hostBitsAllowed = 3...64

    public let isIPv4: Bool
    /// Prefix length within the family (IPv4 /12 is 12).
    public let prefixLength: Int
    public let hostBits: Int
    /// log2 of the addresses in one block.
    public let blockShift: Int
    /// The first address as 16 bytes (IPv4-mapped for IPv4), host bits zero.
    private let base: [UInt8]

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case hostBitsSet(String, suggestion: String)
        case size(String, hostBits: Int)

        public var description: String {
            switch self {
            case .malformed(let text):
                return "'\(text)' is not an address range: write it like 10.32.0.0/12 or fd32::/104, or 'off'"
            case .hostBitsSet(let text, let suggestion):
                return "'\(text)' has host bits set: did you mean \(suggestion)?"
            case .size(let text, let hostBits):
                return "'\(text)' has \(hostBits) host bits: an allocation range needs between \(AddressRange.hostBitsAllowed.lowerBound) (a /29 for IPv4) and \(AddressRange.hostBitsAllowed.upperBound) (an IPv6 /64)"
            }
        }
    }

    public init(_ text: String) throws {
        let subnet: Subnet
        do { subnet = try Subnet(text) } catch Subnet.ParseError.hostBitsSet(_, let network) {
            throw ParseError.hostBitsSet(text, suggestion: network)
        } catch {
            throw ParseError.malformed(text)
        }
        isIPv4 = subnet.address.isIPv4
        prefixLength = subnet.prefixLength
        hostBits = (isIPv4 ? 32 : 128) - prefixLength
        guard Self.hostBitsAllowed.contains(hostBits) else { throw ParseError.size(text, hostBits: hostBits) }
        base = subnet.address.bytes  // host bits zero: Subnet refuses them
        blockShift = max(2, hostBits - 12)
    }

    public var description: String { "\(IPAddress(bytes: base)!)/\(prefixLength)" }

    public var blockCount: Int { 1 << (hostBits - blockShift) }
    /// The number of addresses, less one (2^64 does not fit a UInt64).
    public var lastOffset: UInt64 { hostBits == 64 ? .max : (1 << UInt64(hostBits)) - 1 }

    /// Offsets never handed out: the range's first (network) and last (IPv4 broadcast; kept
    /// for IPv6 too, so both families follow one rule).
    public func isReserved(_ offset: UInt64) -> Bool { offset == 0 || offset == lastOffset }

    public func block(of offset: UInt64) -> Int { Int(offset >> UInt64(blockShift)) }
    public func firstOffset(ofBlock block: Int) -> UInt64 { UInt64(block) << UInt64(blockShift) }
    public var addressesPerBlock: UInt64 { 1 << UInt64(blockShift) }

    /// Addresses of `block` that may be allocated: the block less the range's reserved first
    /// and last address when it holds them.
    public func usableAddresses(inBlock block: Int) -> UInt64 {
        let first = firstOffset(ofBlock: block), last = first + (addressesPerBlock - 1)
        return addressesPerBlock - (isReserved(first) ? 1 : 0) - (isReserved(last) ? 1 : 0)
    }

    /// Addresses of these blocks that may be allocated (saturating: an IPv6 share can hold
    /// more than 2^64).
    public func usableAddresses(inBlocks blocks: [Int]) -> UInt64 {
        blocks.reduce(0) { total, block in
            let sum = total.addingReportingOverflow(usableAddresses(inBlock: block))
            return sum.overflow ? .max : sum.partialValue
        }
    }

    public func address(at offset: UInt64) -> IPAddress {
        precondition(offset <= lastOffset, "offset outside the range")
        var bytes = base
        var carry = offset
        var i = 15
        while carry != 0 && i >= 0 {
            let sum = UInt64(bytes[i]) + (carry & 0xFF)
            bytes[i] = UInt8(truncatingIfNeeded: sum)
            carry = (carry >> 8) + (sum >> 8)
            i -= 1
        }
        return IPAddress(bytes: bytes)!
    }

    /// The address's offset, nil when it is outside the range (or of the other family).
    public func offset(of address: IPAddress) -> UInt64? {
        guard address.isIPv4 == isIPv4 else { return nil }
        let prefixBytes = 16 - (hostBits + 7) / 8
        guard address.bytes[..<prefixBytes] == base[..<prefixBytes] else { return nil }
        var offset: UInt64 = 0
        for i in prefixBytes..<16 { offset = offset << 8 | UInt64(address.bytes[i]) }
        let partial = hostBits % 8
        if partial != 0 {
            // The top byte holds prefix bits too: they must match the base.
            let mask = UInt8(0xFF) << UInt8(partial)
            guard address.bytes[prefixBytes] & mask == base[prefixBytes] & mask else { return nil }
            offset &= lastOffset
        }
        return offset
    }
}

// MARK: - Wire form (docs/protocol.md §7.1)

extension AddressRange {
    /// Family (4 or 6), prefix length, first address (4 or 16 bytes).
    public func encode(into w: inout ByteWriter) {
        w.u8(isIPv4 ? 4 : 6)
        w.u8(UInt8(prefixLength))
        w.append(isIPv4 ? base[12...] : base[...])
    }

    public static func decode(from r: inout ByteReader) throws -> AddressRange {
        let family = try r.u8("range family")
        guard family == 4 || family == 6 else { throw WireError.invalid(what: "range family \(family)") }
        let prefix = try r.u8("range prefix")
        let raw = try r.bytes(family == 4 ? 4 : 16, "range address")
        let bytes = family == 4 ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + raw : raw
        do { return try AddressRange("\(IPAddress(bytes: bytes)!)/\(prefix)") } catch {
            throw WireError.invalid(what: "range (\(error))")
        }
    }
}
