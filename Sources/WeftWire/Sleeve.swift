// The sleeve packet format (docs/protocol.md §5): a 16-byte header, then either sealed or clear
// frame records. These helpers read and write in place on the data plane's buffers: no
// allocation, no throwing, every read bounds-checked by the caller-supplied length.

public enum SleeveKind: UInt8, Sendable {
    case data = 1
    case heartbeat = 2
    case heartbeatAck = 3
    case pmtuProbe = 4
    case pmtuAck = 5
    /// A piece of a TCP super-frame from the TAP's segmentation offload (§5.5).
    case fragment = 6
}

public enum Sleeve {
    public static let headerSize = 16
    public static let tagSize = 16
    /// u16 length, u16 source short id, u16 destination short id.
    public static let frameHeaderSize = 6
    /// Bit 7 of the type byte: the body is sealed.
    public static let sealedFlag: UInt8 = 0x80
    /// Destination short id of a frame flooded along the source's broadcast tree.
    public static let broadcastShortId: UInt16 = 0xFFFF

    /// The overlay MTU that makes every sleeve packet fit an underlay of `underlayMTU`.
    public static func overlayMTU(underlayMTU: Int, family: UnderlayFamily) -> Int { underlayMTU - family.sleeveOverhead }

    /// The overlay MTU a UDP payload of `payload` bytes carries, and back: the payload less
    /// header, tag, frame record and inner Ethernet (§5.6).
    public static func overlayMTU(payload: Int) -> Int { payload - Overhead.sleevePayload }
    public static func payload(overlayMTU: Int) -> Int { overlayMTU + Overhead.sleevePayload }

    public struct Header: Equatable, Sendable {
        public var kind: SleeveKind
        public var sealed: Bool
        public var epoch: UInt8
        public var sender: UInt16
        public var receiver: UInt16
        public var counter: UInt64

        public init(kind: SleeveKind, sealed: Bool, epoch: UInt8, sender: UInt16, receiver: UInt16, counter: UInt64) {
            self.kind = kind
            self.sealed = sealed
            self.epoch = epoch
            self.sender = sender
            self.receiver = receiver
            self.counter = counter
        }
    }

    public static func writeHeader(_ h: Header, to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: h.kind.rawValue | (h.sealed ? sealedFlag : 0), toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: h.epoch, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: h.sender.bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: h.receiver.bigEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: h.counter.bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// nil when the packet is shorter than a header or names an unknown kind.
    public static func readHeader(_ p: UnsafeRawPointer, length: Int) -> Header? {
        guard length >= headerSize else { return nil }
        let type = p.load(fromByteOffset: 0, as: UInt8.self)
        guard let kind = SleeveKind(rawValue: type & ~sealedFlag) else { return nil }
        return Header(kind: kind, sealed: type & sealedFlag != 0,
                      epoch: p.load(fromByteOffset: 1, as: UInt8.self),
                      sender: UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)),
                      receiver: UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt16.self)),
                      counter: counter(p))
    }

    /// The counter of a packet of at least `headerSize` bytes (the caller checked the length).
    @inline(__always)
    public static func counter(_ p: UnsafeRawPointer) -> UInt64 {
        UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    public static func writeFrameHeader(length: Int, source: UInt16, destination: UInt16, to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: UInt16(truncatingIfNeeded: length).bigEndian, toByteOffset: 0, as: UInt16.self)
        p.storeBytes(of: source.bigEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: destination.bigEndian, toByteOffset: 4, as: UInt16.self)
    }

    /// One frame record inside a data body.
    public struct FrameRecord: Equatable, Sendable {
        /// Offset of the Ethernet frame from the start of the body.
        public var offset: Int
        public var length: Int
        public var source: UInt16
        public var destination: UInt16
    }

    /// Walks the frame records of a (clear or opened) data body. A body with any malformed
    /// record is rejected whole before anything is visited: returns false.
    @inline(__always)
    public static func forEachFrame(in body: UnsafeRawPointer, length: Int, _ visit: (FrameRecord) -> Void) -> Bool {
        guard walk(body, length, { _ in }) else { return false }
        return walk(body, length, visit)
    }

    @inline(__always)
    private static func walk(_ body: UnsafeRawPointer, _ length: Int, _ visit: (FrameRecord) -> Void) -> Bool {
        var offset = 0
        while offset < length {
            guard length - offset >= frameHeaderSize else { return false }
            let frameLength = Int(UInt16(bigEndian: body.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            let source = UInt16(bigEndian: body.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self))
            let destination = UInt16(bigEndian: body.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self))
            let start = offset + frameHeaderSize
            guard frameLength >= Overhead.ethernetHeader, frameLength <= length - start else { return false }
            visit(FrameRecord(offset: start, length: frameLength, source: source, destination: destination))
            offset = start + frameLength
        }
        return true
    }
}
