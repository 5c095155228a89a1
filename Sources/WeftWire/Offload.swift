// What the TAP device says about a frame when it is opened with IFF_VNET_HDR (struct
// virtio_net_hdr), the Internet checksum that finishes a partial one, and the sleeve FRAGMENT
// record that carries a TCP super-frame across packets (docs/protocol.md §5.5). Pure.

public struct VirtioNetHeader: Equatable, Sendable {
    public static let size = 10
    public static let needsChecksum: UInt8 = 1
    public static let gsoNone: UInt8 = 0
    /// GSO type without the ECN bit.
    public static let gsoTypeMask: UInt8 = 0x7F

    public var flags: UInt8
    public var gsoType: UInt8
    public var headerLength: UInt16
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0, checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    public var isSuperFrame: Bool { gsoType & Self.gsoTypeMask != Self.gsoNone }

    /// As the TAP device reads and writes it: native (little-endian) byte order.
    public static func loadNative(_ p: UnsafeRawPointer) -> VirtioNetHeader { load(p, bigEndian: false) }
    public func storeNative(_ p: UnsafeMutableRawPointer) { store(p, bigEndian: false) }
    /// On the sleeve wire: network byte order.
    public static func loadWire(_ p: UnsafeRawPointer) -> VirtioNetHeader { load(p, bigEndian: true) }
    public func storeWire(_ p: UnsafeMutableRawPointer) { store(p, bigEndian: true) }

    private static func load(_ p: UnsafeRawPointer, bigEndian: Bool) -> VirtioNetHeader {
        func u16(_ offset: Int) -> UInt16 {
            let raw = p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
            return bigEndian ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw)
        }
        return VirtioNetHeader(flags: p.load(as: UInt8.self), gsoType: p.load(fromByteOffset: 1, as: UInt8.self),
                               headerLength: u16(2), gsoSize: u16(4), checksumStart: u16(6), checksumOffset: u16(8))
    }

    private func store(_ p: UnsafeMutableRawPointer, bigEndian: Bool) {
        func put(_ value: UInt16, _ offset: Int) {
            p.storeBytes(of: bigEndian ? value.bigEndian : value.littleEndian, toByteOffset: offset, as: UInt16.self)
        }
        p.storeBytes(of: flags, as: UInt8.self)
        p.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        put(headerLength, 2)
        put(gsoSize, 4)
        put(checksumStart, 6)
        put(checksumOffset, 8)
    }

    /// Bytes of one segment's IP packet (IP + L4 headers + gso_size payload) of a TCP
    /// super-frame, for the path-MTU check; nil when the headers do not parse.
    public func segmentIPLength(frame: UnsafeRawPointer, length: Int) -> Int? {
        let l4 = Int(checksumStart)
        guard l4 >= 14 + 20, l4 + 20 <= length else { return nil }
        let tcpHeader = Int(frame.load(fromByteOffset: l4 + 12, as: UInt8.self) >> 4) * 4
        return l4 - 14 + tcpHeader + Int(gsoSize)
    }
}

public enum InternetChecksum {
    /// One's-complement sum of `length` bytes as 16-bit big-endian words, not yet folded.
    @inline(__always)
    public static func sum(_ p: UnsafeRawPointer, _ length: Int, initial: UInt64 = 0) -> UInt64 {
        var acc = initial
        var i = 0
        // 4 bytes at a time into a 64-bit accumulator: carries pile up in the high half.
        while i + 4 <= length {
            acc &+= UInt64(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            i += 4
        }
        if i + 2 <= length {
            acc &+= UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt16.self)))
            i += 2
        }
        if i < length { acc &+= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << 8 }
        return acc
    }

    @inline(__always)
    public static func fold(_ sum: UInt64) -> UInt16 {
        var s = sum
        while s >> 16 != 0 { s = (s & 0xFFFF) + (s >> 16) }
        return UInt16(s)
    }

    /// Finishes a partial checksum the way the kernel would (CHECKSUM_PARTIAL): the field at
    /// `start + offset` holds the pseudo-header sum; the checksum covers `start` to the end.
    public static func complete(frame: UnsafeMutableRawPointer, length: Int, start: Int, offset: Int) -> Bool {
        guard start >= 14, start + offset + 2 <= length else { return false }
        let value = ~fold(sum(frame + start, length - start))
        frame.storeBytes(of: value.bigEndian, toByteOffset: start + offset, as: UInt16.self)
        return true
    }
}

/// A piece of a super-frame (kind FRAGMENT): every piece carries the whole description, so
/// pieces can be relayed and reassembled in any order.
public struct FragmentHeader: Equatable, Sendable {
    public static let size = 28
    /// Super-frames larger than this many pieces are not sent (64 KiB in pieces of ≥ 512 bytes).
    public static let maxCount = 128

    public var source: UInt16
    public var destination: UInt16
    public var frameId: UInt32
    public var index: UInt16
    public var count: UInt16
    /// Length of every piece but the last.
    public var chunkSize: UInt16
    public var totalLength: UInt32
    public var virtio: VirtioNetHeader

    public init(source: UInt16, destination: UInt16, frameId: UInt32, index: UInt16, count: UInt16, chunkSize: UInt16, totalLength: UInt32, virtio: VirtioNetHeader) {
        self.source = source
        self.destination = destination
        self.frameId = frameId
        self.index = index
        self.count = count
        self.chunkSize = chunkSize
        self.totalLength = totalLength
        self.virtio = virtio
    }

    public func store(_ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: source.bigEndian, as: UInt16.self)
        p.storeBytes(of: destination.bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: frameId.bigEndian, toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: index.bigEndian, toByteOffset: 8, as: UInt16.self)
        p.storeBytes(of: count.bigEndian, toByteOffset: 10, as: UInt16.self)
        p.storeBytes(of: chunkSize.bigEndian, toByteOffset: 12, as: UInt16.self)
        p.storeBytes(of: totalLength.bigEndian, toByteOffset: 14, as: UInt32.self)
        virtio.storeWire(p + 18)
    }

    /// nil unless the piece is self-consistent: index below count, count within limits, the
    /// piece's bytes exactly where the chunk size says, inside the total.
    public static func load(_ p: UnsafeRawPointer, bodyLength: Int) -> FragmentHeader? {
        guard bodyLength > size else { return nil }
        let h = FragmentHeader(
            source: UInt16(bigEndian: p.loadUnaligned(as: UInt16.self)),
            destination: UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)),
            frameId: UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
            index: UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt16.self)),
            count: UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 10, as: UInt16.self)),
            chunkSize: UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self)),
            totalLength: UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 14, as: UInt32.self)),
            virtio: VirtioNetHeader.loadWire(p + 18))
        let chunk = bodyLength - size
        guard h.count >= 1, Int(h.count) <= maxCount, h.index < h.count, h.chunkSize > 0,
              h.totalLength >= 14, h.totalLength <= 65535 else { return nil }
        let offset = Int(h.index) * Int(h.chunkSize)
        let expected = h.index == h.count - 1 ? Int(h.totalLength) - offset : Int(h.chunkSize)
        guard expected > 0, chunk == expected, offset + chunk <= Int(h.totalLength),
              (Int(h.count) - 1) * Int(h.chunkSize) < Int(h.totalLength) else { return nil }
        return h
    }

    public var offset: Int { Int(index) * Int(chunkSize) }
}
