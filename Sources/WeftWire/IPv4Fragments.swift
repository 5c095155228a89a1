// An IPv4 packet without DF that does not fit the route is cut into IPv4 fragments that do
// (RFC 791), which the destination's kernel reassembles: the sender asked for fragmentation
// rather than an error (docs/protocol.md §5.4). Pure; writes in place; no allocation.

public enum IPv4Fragments {
    static let headerSize = 20
    static let flagDF: UInt16 = 0x4000
    static let flagMF: UInt16 = 0x2000

    /// How many fragments of at most `mtu` bytes of IP the frame's packet is cut into; 0 when it
    /// may not or cannot be cut: not IPv4, DF set, IP options (they would have to be sorted into
    /// copied and not copied), a total length the frame does not hold, an MTU under 68, or a
    /// fragment whose offset and length end past the 65535 bytes of an IP packet (its pieces'
    /// offsets would not fit their 13 bits; such a packet is malformed and is dropped).
    public static func count(frame: UnsafeRawPointer, length: Int, mtu: Int) -> Int {
        guard mtu >= 68, length >= 14 + headerSize, ICMPTooBig.etherType(frame) == 0x0800 else { return 0 }
        let ip = frame + 14
        let total = Int(u16(ip, 2))
        let offset = Int(u16(ip, 6) & 0x1FFF) * 8
        guard ip.load(as: UInt8.self) == 0x45, u16(ip, 6) & flagDF == 0, total > headerSize, total <= length - 14,
              offset + total <= 0xFFFF else { return 0 }
        let chunk = (mtu - headerSize) & ~7
        return (total - headerSize + chunk - 1) / chunk
    }

    /// Writes fragment `index` (of `count(…)`) as an Ethernet frame into `out` and returns its
    /// length: the frame's Ethernet and IP headers with total length, MF, offset and checksum
    /// for this piece, then its part of the payload. A packet that is itself a fragment keeps
    /// its offset and its MF on the last piece.
    public static func write(frame: UnsafeRawPointer, length: Int, mtu: Int, index: Int, into out: UnsafeMutableRawPointer) -> Int {
        let ip = frame + 14
        let payload = Int(u16(ip, 2)) - headerSize
        let chunk = (mtu - headerSize) & ~7
        let start = index * chunk
        let size = min(chunk, payload - start)
        let flags = u16(ip, 6)
        let last = start + size == payload
        out.copyMemory(from: frame, byteCount: 14 + headerSize)
        let header = out + 14
        ICMPTooBig.put16(header, 2, UInt16(headerSize + size))
        let offset = (flags & 0x1FFF) + UInt16(start / 8)
        ICMPTooBig.put16(header, 6, (flags & 0xE000) | (last ? 0 : flagMF) | offset)
        ICMPTooBig.put16(header, 10, 0)
        ICMPTooBig.put16(header, 10, ICMPTooBig.checksum(UnsafeRawPointer(header), headerSize, initial: 0))
        (header + headerSize).copyMemory(from: ip + headerSize + start, byteCount: size)
        return 14 + headerSize + size
    }

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(p.load(fromByteOffset: offset, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: offset + 1, as: UInt8.self))
    }
}
