// What the fast datapath puts on the wire besides the workloads' own frames: the VXLAN network
// id that names a frame's source and destination peers, and the heartbeat frame that proves a
// VXLAN path at the full overlay MTU (docs/protocol.md §6).

public enum FastdpWire {
    /// The UDP port of a router's VXLAN vport: one above its own --port.
    public static func vxlanPort(routerPort: Int) -> Int { routerPort + 1 }

    /// The VNI: source short id in the high 12 bits, destination in the low 12. Short ids use all
    /// of 0…4095, so a broadcast is written as destination = source (no frame is ever sent to the
    /// peer it came from).
    public static func vni(source: UInt16, destination: UInt16) -> UInt64 {
        let s = UInt64(source & TopologyUpdate.maxShortId)
        let d = destination == Sleeve.broadcastShortId ? s : UInt64(destination & TopologyUpdate.maxShortId)
        return s << 12 | d
    }

    /// The peers a VNI names; `destination` is `Sleeve.broadcastShortId` for a broadcast.
    public static func peers(vni: UInt64) -> (source: UInt16, destination: UInt16) {
        let s = UInt16((vni >> 12) & 0xFFF)
        let d = UInt16(vni & 0xFFF)
        return (s, d == s ? Sleeve.broadcastShortId : d)
    }
}

/// A fast-datapath heartbeat: an Ethernet frame exactly as large as the overlay MTU allows, sent
/// through the VXLAN path, so "fastdp works" means "works at this MTU". Each side sends them on
/// a timer and echoes the newest stamp it received, so each side learns that both directions work.
///
/// Frame: destination 03:77:65:66:74:68 (multicast, locally administered; never a workload's),
/// source = the sender's bridge MAC, ethertype 0x88B5 (IEEE local experimental), then
/// "WFHB", version 1, a reserved byte, the sender's short id (2), its stamp (8) and the newest
/// stamp it received from the receiver (8, 0 for none), all big-endian; zeros up to the size.
public struct FastdpHeartbeat: Equatable, Sendable {
    public static let destination: [UInt8] = [0x03, 0x77, 0x65, 0x66, 0x74, 0x68]
    public static let ethertype: UInt16 = 0x88B5
    static let magic: [UInt8] = Array("WFHB".utf8)
    static let version: UInt8 = 1
    /// Ethernet header + the fields above.
    public static let minimumSize = Overhead.ethernetHeader + 4 + 1 + 1 + 2 + 8 + 8

    /// The size of the heartbeats that prove a path at `overlayMTU`: the largest frame it carries.
    public static func size(overlayMTU: Int) -> Int { overlayMTU + Overhead.ethernetHeader }

    public var sender: UInt16
    /// The sender's monotonic clock, in nanoseconds, when it sent this heartbeat.
    public var stamp: Int64
    /// The newest `stamp` the sender has received from the receiver; 0 for none.
    public var echo: Int64

    public init(sender: UInt16, stamp: Int64, echo: Int64) {
        self.sender = sender
        self.stamp = stamp
        self.echo = echo
    }

    /// The whole frame, `size` bytes (at least `minimumSize`): `size(overlayMTU:)` for the MTU proof.
    public func frame(source mac: [UInt8], size: Int) -> [UInt8] {
        var w = ByteWriter()
        w.append(Self.destination)
        w.append(mac)
        w.u16(Self.ethertype)
        w.append(Self.magic)
        w.u8(Self.version)
        w.u8(0)
        w.u16(sender)
        w.u64(UInt64(bitPattern: stamp))
        w.u64(UInt64(bitPattern: echo))
        var bytes = w.bytes
        if bytes.count < size { bytes += [UInt8](repeating: 0, count: size - bytes.count) }
        return bytes
    }

    /// Whether `frame` is addressed as a heartbeat (before any parsing of its body).
    public static func isHeartbeat(destination: [UInt8]) -> Bool { destination == Self.destination }

    /// Parses a heartbeat frame; nil when it is not one, or not of this version.
    public init?(frame: [UInt8]) {
        guard frame.count >= Self.minimumSize, Array(frame[0..<6]) == Self.destination else { return nil }
        var r = ByteReader(frame)
        do {
            _ = try r.bytes(12, "addresses")
            guard try r.u16("ethertype") == Self.ethertype, try r.bytes(4, "magic") == Self.magic,
                  try r.u8("version") == Self.version else { return nil }
            _ = try r.u8("reserved")
            sender = try r.u16("sender")
            stamp = Int64(bitPattern: try r.u64("stamp"))
            echo = Int64(bitPattern: try r.u64("echo"))
        } catch {
            return nil
        }
    }
}
