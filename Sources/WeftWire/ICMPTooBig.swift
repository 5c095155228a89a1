// The answer to a frame too big for the path (docs/design.md §3): an ICMPv4 "fragmentation needed" or
// ICMPv6 "packet too big", built as an Ethernet frame that goes back to the sender through the
// bridge, so its TCP lowers its segment size instead of black-holing. Pure; writes in place.

public enum ICMPTooBig {
    /// Largest reply we build: an IPv6 error must fit the minimum IPv6 MTU (1280).
    public static let maxReply = 14 + 1280

    /// Whether the frame is IPv4 with DF set, or IPv6 (which never fragments in transit): the
    /// cases where the sender expects an ICMP error rather than fragmentation.
    public static func wantsError(frame: UnsafeRawPointer, length: Int) -> Bool {
        guard length >= 14 + 20 else { return false }
        switch etherType(frame) {
        case 0x0800: return frame.load(fromByteOffset: 14 + 6, as: UInt8.self) & 0x40 != 0
        case 0x86DD: return length >= 14 + 40
        default: return false
        }
    }

    static func etherType(_ frame: UnsafeRawPointer) -> UInt16 {
        UInt16(frame.load(fromByteOffset: 12, as: UInt8.self)) << 8 | UInt16(frame.load(fromByteOffset: 13, as: UInt8.self))
    }

    /// Builds the error for `frame` into `out` (room for `maxReply` bytes) telling the sender
    /// that at most `mtu` bytes of IP fit. Returns the reply's length, 0 when none applies.
    public static func build(frame: UnsafeRawPointer, length: Int, mtu: Int, into out: UnsafeMutableRawPointer) -> Int {
        guard wantsError(frame: frame, length: length) else { return 0 }
        // Ethernet: back to the sender, from the address it was sending to.
        out.copyMemory(from: frame + 6, byteCount: 6)
        (out + 6).copyMemory(from: frame, byteCount: 6)
        (out + 12).copyMemory(from: frame + 12, byteCount: 2)
        let ip = frame + 14
        let reply = out + 14
        if etherType(frame) == 0x0800 {
            let headerLength = Int(ip.load(as: UInt8.self) & 0x0F) * 4
            guard headerLength >= 20, length >= 14 + headerLength else { return 0 }
            // RFC 792: the offending IP header and the first 8 bytes of its payload.
            let quoted = min(length - 14, headerLength + 8)
            let total = 20 + 8 + quoted
            reply.initializeMemory(as: UInt8.self, repeating: 0, count: 28)
            put8(reply, 0, 0x45)
            put16(reply, 2, UInt16(total))
            put8(reply, 8, 64)  // TTL
            put8(reply, 9, 1)   // ICMP
            (reply + 12).copyMemory(from: ip + 16, byteCount: 4)  // from the original destination
            (reply + 16).copyMemory(from: ip + 12, byteCount: 4)  // to the original source
            put16(reply, 10, checksum(UnsafeRawPointer(reply), 20, initial: 0))
            let icmp = reply + 20
            put8(icmp, 0, 3)  // destination unreachable
            put8(icmp, 1, 4)  // fragmentation needed and DF set
            put16(icmp, 6, UInt16(clamping: mtu))
            (icmp + 8).copyMemory(from: ip, byteCount: quoted)
            put16(icmp, 2, checksum(UnsafeRawPointer(icmp), 8 + quoted, initial: 0))
            return 14 + total
        }
        // IPv6 (RFC 4443 §3.2): as much of the packet as keeps the reply within 1280 bytes.
        let quoted = min(length - 14, 1280 - 40 - 8)
        let payload = 8 + quoted
        reply.initializeMemory(as: UInt8.self, repeating: 0, count: 48)
        put8(reply, 0, 0x60)
        put16(reply, 4, UInt16(payload))
        put8(reply, 6, 58)   // ICMPv6
        put8(reply, 7, 64)   // hop limit
        (reply + 8).copyMemory(from: ip + 24, byteCount: 16)
        (reply + 24).copyMemory(from: ip + 8, byteCount: 16)
        let icmp = reply + 40
        put8(icmp, 0, 2)  // packet too big
        put16(icmp, 4, UInt16(truncatingIfNeeded: mtu >> 16))
        put16(icmp, 6, UInt16(truncatingIfNeeded: mtu))
        (icmp + 8).copyMemory(from: ip, byteCount: quoted)
        // Pseudo-header: source, destination, upper-layer length, next header.
        var sum = partialSum(UnsafeRawPointer(reply + 8), 32)
        sum += UInt32(payload) + 58
        put16(icmp, 2, checksum(UnsafeRawPointer(icmp), payload, initial: sum))
        return 14 + 40 + payload
    }

    @inline(__always) static func put8(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt8) {
        p.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
    }

    @inline(__always) static func put16(_ p: UnsafeMutableRawPointer, _ offset: Int, _ v: UInt16) {
        p.storeBytes(of: UInt8(v >> 8), toByteOffset: offset, as: UInt8.self)
        p.storeBytes(of: UInt8(v & 0xFF), toByteOffset: offset + 1, as: UInt8.self)
    }

    static func partialSum(_ p: UnsafeRawPointer, _ length: Int) -> UInt32 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < length {
            sum += UInt32(p.load(fromByteOffset: i, as: UInt8.self)) << 8 | UInt32(p.load(fromByteOffset: i + 1, as: UInt8.self))
            i += 2
        }
        if i < length { sum += UInt32(p.load(fromByteOffset: i, as: UInt8.self)) << 8 }
        return sum
    }

    /// The Internet checksum (RFC 1071) of `length` bytes, with the checksum field zero.
    public static func checksum(_ p: UnsafeRawPointer, _ length: Int, initial: UInt32) -> UInt16 {
        var sum = UInt64(initial) + UInt64(partialSum(p, length))
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }
}
