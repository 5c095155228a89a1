// What each encapsulation adds to a workload's IP packet, in one place: the overlay MTU at
// launch, doctor's MTU check, the path-MTU probes and the fastdp hold rule all read these
// (docs/protocol.md §5.6, docs/design.md §7). The outer IP header depends on the underlay's
// family: 20 bytes on IPv4, 40 on IPv6 (no options, no extension headers).

/// The IP family of an underlay link: what the outer header of every datagram on it costs.
public enum UnderlayFamily: String, Sendable, Codable, CaseIterable {
    case ipv4
    case ipv6

    /// The outer IP and UDP headers: a UDP payload of n bytes is an underlay packet of n + this.
    public var udpHeaders: Int {
        switch self {
        case .ipv4: Overhead.ipv4UDPHeaders
        case .ipv6: Overhead.ipv6UDPHeaders
        }
    }

    /// Sleeve on this underlay, all of it: 80 on IPv4, 100 on IPv6.
    public var sleeveOverhead: Int { udpHeaders + Overhead.sleevePayload }
    /// fastdp (VXLAN) on this underlay: 50 on IPv4, 70 on IPv6.
    public var fastdpOverhead: Int { udpHeaders + Overhead.vxlanHeader + Overhead.ethernetHeader }
}

public enum Overhead {
    /// 20 IPv4 + 8 UDP.
    public static let ipv4UDPHeaders = 20 + 8
    /// 40 IPv6 + 8 UDP.
    public static let ipv6UDPHeaders = 40 + 8
    /// The inner Ethernet header of every frame the overlay carries (also the shortest frame).
    public static let ethernetHeader = 14
    /// The VXLAN header of a fastdp packet.
    public static let vxlanHeader = 8

    /// Sleeve, inside the UDP payload, for one frame in one sealed packet: 16 header + 16 tag
    /// + 6 frame record + 14 inner Ethernet = 52.
    public static let sleevePayload = Sleeve.headerSize + Sleeve.tagSize + Sleeve.frameHeaderSize + ethernetHeader
    /// Sleeve on an IPv4 underlay, all of it: 28 + 52 = 80.
    public static let sleeveIPv4 = UnderlayFamily.ipv4.sleeveOverhead
    /// fastdp on an IPv4 underlay: 28 + 8 VXLAN + 14 inner Ethernet = 50.
    public static let fastdpIPv4 = UnderlayFamily.ipv4.fastdpOverhead
}
