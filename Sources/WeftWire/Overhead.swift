// What each encapsulation adds to a workload's IP packet, in one place: the overlay MTU at
// launch, doctor's MTU check, the path-MTU probes and the fastdp hold rule all read these
// (docs/protocol.md §5.6, docs/design.md §7). IPv4 underlay only, for now.

public enum Overhead {
    /// The underlay's headers around every datagram: 20 IPv4 + 8 UDP. A UDP payload of n bytes
    /// is an underlay IP packet of n + 28.
    public static let ipv4UDPHeaders = 20 + 8
    /// The inner Ethernet header of every frame the overlay carries (also the shortest frame).
    public static let ethernetHeader = 14
    /// The VXLAN header of a fastdp packet.
    public static let vxlanHeader = 8

    /// Sleeve, inside the UDP payload, for one frame in one sealed packet: 16 header + 16 tag
    /// + 6 frame record + 14 inner Ethernet = 52.
    public static let sleevePayload = Sleeve.headerSize + Sleeve.tagSize + Sleeve.frameHeaderSize + ethernetHeader
    /// Sleeve on an IPv4 underlay, all of it: 28 + 52 = 80.
    public static let sleeveIPv4 = ipv4UDPHeaders + sleevePayload
    /// fastdp on an IPv4 underlay: 28 + 8 VXLAN + 14 inner Ethernet = 50.
    public static let fastdpIPv4 = ipv4UDPHeaders + vxlanHeader + ethernetHeader
}
