// A peer's sleeve address in the form the UDP socket takes and gives, for either family, so
// the hot path passes one fixed-size value and never branches on the family per packet.
import Glibc
import WeftMesh
import WeftWire

/// A sockaddr_in6-sized slot. On the dual-stack socket (the usual case) it is a sockaddr_in6 and
/// an IPv4 peer is ::ffff:a.b.c.d, exactly as recvmmsg reports it; on an IPv4-only socket (a
/// host whose kernel has no IPv6) its first 16 bytes are a sockaddr_in and the rest stay zero.
/// Either way the kernel accepts it with the length of a sockaddr_in6 (CWeftShims.h).
public struct UnderlayAddress: Sendable {
    public var raw: sockaddr_in6

    public init() { raw = sockaddr_in6() }
    public init(raw: sockaddr_in6) { self.raw = raw }

    /// `ip`:`port` for a socket of `socketFamily` (AF_INET6 or AF_INET); nil when an IPv4-only
    /// socket cannot reach an IPv6 address.
    public init?(ip: IPAddress, port: UInt16, socketFamily: Int32) {
        var a = sockaddr_in6()
        if socketFamily == AF_INET6 {
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &a.sin6_addr) { $0.copyBytes(from: ip.bytes) }
        } else {
            guard ip.isIPv4 else { return nil }
            withUnsafeMutableBytes(of: &a) { raw in
                var v4 = sockaddr_in()
                v4.sin_family = sa_family_t(AF_INET)
                v4.sin_port = port.bigEndian
                withUnsafeMutableBytes(of: &v4.sin_addr) { $0.copyBytes(from: ip.bytes[12...]) }
                withUnsafeBytes(of: v4) { raw.copyMemory(from: $0) }
            }
        }
        raw = a
    }

    /// Same family, address and port: the first 24 bytes (family, port, then the IPv4 address
    /// and zeros, or the flow label and the IPv6 address). Three loads, no branch.
    @inline(__always)
    public func same(as other: UnderlayAddress) -> Bool {
        withUnsafeBytes(of: raw) { a in
            withUnsafeBytes(of: other.raw) { b in
                a.loadUnaligned(as: UInt64.self) == b.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
                    && a.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                    && a.loadUnaligned(fromByteOffset: 16, as: UInt64.self) == b.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
            }
        }
    }

    public var port: UInt16 { UInt16(bigEndian: raw.sin6_port) }  // same offset in sockaddr_in

    /// The address as 16 bytes (IPv4 mapped), whichever layout holds it.
    public var ip: IPAddress {
        if Int32(raw.sin6_family) == AF_INET6 {
            return IPAddress(bytes: withUnsafeBytes(of: raw.sin6_addr) { Array($0) })!
        }
        let v4 = withUnsafeBytes(of: raw) { Array($0[4..<8]) }
        return IPAddress(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + v4)!
    }

    /// The family of the link this address is on: what its outer header costs. IPv4 for an
    /// IPv4-only socket's layout and for ::ffff:a.b.c.d; no allocation.
    public var family: UnderlayFamily {
        guard Int32(raw.sin6_family) == AF_INET6 else { return .ipv4 }
        return withUnsafeBytes(of: raw.sin6_addr) { a in
            a.loadUnaligned(as: UInt64.self) == 0 && UInt32(bigEndian: a.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == 0xFFFF
        } ? .ipv4 : .ipv6
    }

    /// The IPv4 address in network order; nil for an IPv6 peer.
    public var ipv4Bytes: [UInt8]? {
        let ip = ip
        return ip.isIPv4 ? Array(ip.bytes[12...]) : nil
    }

    /// `a.b.c.d:port` or `[v6]:port`.
    public var text: String { ip.endpoint(port: Int(port)) }
}
