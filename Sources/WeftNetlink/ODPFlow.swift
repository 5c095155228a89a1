import CMnl

// The flow keys and actions Weft needs from the Open vSwitch kernel datapath, and their
// netlink encoding. Wire layouts: docs/netlink.md, "ODP client" (from the team's fact sheet).

/// Outer-header metadata of a tunnelled packet (OVS_KEY_ATTR_TUNNEL): in a flow key it says
/// which tunnel a packet came from; in a SET action it says how to encapsulate it.
/// Addresses are in network order, 4 bytes for IPv4 and 16 for IPv6; a tunnel uses one family.
/// An all-zero address is left out on the wire.
public struct TunnelKey: Sendable, Hashable {
    /// Tunnel id; for VXLAN the VNI, in the low 24 bits. Always sent (it sets the kernel's KEY flag).
    public var id: UInt64
    public var ipv4Source: [UInt8]
    public var ipv4Destination: [UInt8]
    /// The outer addresses of a tunnel over IPv6 (OVS_TUNNEL_KEY_ATTR_IPV6_SRC/DST).
    public var ipv6Source: [UInt8]
    public var ipv6Destination: [UInt8]
    /// Outer TOS; sent only when non-zero.
    public var tos: UInt8
    /// Outer TTL; always sent (the kernel requires it in keys and actions; 0 in a mask = wildcard).
    public var ttl: UInt8
    /// Outer header DF (OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT).
    public var dontFragment: Bool
    /// Outer UDP checksum (OVS_TUNNEL_KEY_ATTR_CSUM).
    public var checksum: Bool
    /// Outer UDP ports as reported for received packets; 0 = absent (not sent).
    public var sourcePort: UInt16
    public var destinationPort: UInt16

    public static let noIPv4: [UInt8] = [0, 0, 0, 0]
    public static let noIPv6 = [UInt8](repeating: 0, count: 16)

    public init(id: UInt64, ipv4Source: [UInt8] = noIPv4, ipv4Destination: [UInt8] = noIPv4,
                ipv6Source: [UInt8] = noIPv6, ipv6Destination: [UInt8] = noIPv6, tos: UInt8 = 0, ttl: UInt8 = 0, dontFragment: Bool = false, checksum: Bool = false,
                sourcePort: UInt16 = 0, destinationPort: UInt16 = 0) {
        self.id = id
        self.ipv4Source = ipv4Source
        self.ipv4Destination = ipv4Destination
        self.ipv6Source = ipv6Source
        self.ipv6Destination = ipv6Destination
        self.tos = tos
        self.ttl = ttl
        self.dontFragment = dontFragment
        self.checksum = checksum
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    var isZero: Bool {
        self == TunnelKey(id: 0)
    }

    /// The outer source as 16 bytes, IPv4 as ::ffff:a.b.c.d (the form WeftMesh's IPAddress keeps).
    public var source16: [UInt8] {
        ipv4Source != Self.noIPv4 ? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + ipv4Source : ipv6Source
    }
}

/// OVS_KEY_ATTR_ETHERNET: source then destination MAC, 6 bytes each.
public struct EthernetKey: Sendable, Hashable {
    public var source: [UInt8]
    public var destination: [UInt8]

    public init(source: [UInt8], destination: [UInt8]) {
        self.source = source
        self.destination = destination
    }
}

/// A flow key (or, with the same fields, its mask): in_port + Ethernet addresses, plus the
/// tunnel metadata for flows from a VXLAN vport. Absent fields are not sent (wildcarded).
/// No ETHERTYPE is ever sent, so a flow matches every ethertype (untagged frames only).
public struct FlowKey: Sendable, Hashable {
    public var inPort: UInt32?
    public var ethernet: EthernetKey?
    public var tunnel: TunnelKey?

    public init(inPort: UInt32? = nil, ethernet: EthernetKey? = nil, tunnel: TunnelKey? = nil) {
        self.inPort = inPort
        self.ethernet = ethernet
        self.tunnel = tunnel
    }

    /// The mask Weft uses for this key: in_port, MACs, tunnel id and addresses matched exactly;
    /// TTL, TOS, flags and the hashed outer source port wildcarded (so it must be sent: without a
    /// mask the kernel matches the whole tunnel key exactly).
    public var exactMask: FlowKey {
        let ones: [UInt8] = [0xff, 0xff, 0xff, 0xff]
        return FlowKey(
            inPort: inPort.map { _ in UInt32.max },
            ethernet: ethernet.map { _ in EthernetKey(source: Array(repeating: 0xff, count: 6),
                                                      destination: Array(repeating: 0xff, count: 6)) },
            tunnel: tunnel.map { t in
                let v6 = t.ipv6Destination != TunnelKey.noIPv6
                let all6 = [UInt8](repeating: 0xff, count: 16)
                return TunnelKey(id: .max,
                                 ipv4Source: v6 || t.ipv4Source == TunnelKey.noIPv4 ? TunnelKey.noIPv4 : ones,
                                 ipv4Destination: v6 ? TunnelKey.noIPv4 : ones,
                                 ipv6Source: v6 && t.ipv6Source != TunnelKey.noIPv6 ? all6 : TunnelKey.noIPv6,
                                 ipv6Destination: v6 ? all6 : TunnelKey.noIPv6)
            })
    }
}

/// The actions Weft installs. Anything else the kernel reports comes back as `.other`.
public enum FlowAction: Sendable, Equatable {
    /// OVS_ACTION_ATTR_OUTPUT: send out of this port number.
    case output(port: UInt32)
    /// OVS_ACTION_ATTR_SET(OVS_KEY_ATTR_TUNNEL): encapsulation for the next OUTPUT to a tunnel vport.
    case setTunnel(TunnelKey)
    /// An action this model does not know: its type and raw payload.
    case other(type: Int, payload: [UInt8])
}

/// One installed flow as a dump reports it.
public struct FlowInfo: Sendable, Equatable {
    public let key: FlowKey
    public let mask: FlowKey
    public let actions: [FlowAction]
    /// Packets and bytes matched (0 until the first hit: the kernel omits STATS then).
    public let packets: UInt64
    public let bytes: UInt64
    /// Time of the last hit in ms of CLOCK_MONOTONIC; nil when the flow was never hit.
    public let usedMillis: UInt64?
}

/// One OVS_PACKET_CMD_MISS upcall: a packet no flow matched.
public struct Miss: Sendable, Equatable {
    /// dp_ifindex of the datapath the packet arrived on.
    public let datapath: Int32
    /// The key the kernel extracted, reduced to this model (in_port, MACs, tunnel).
    public let key: FlowKey
    /// The frame, from its Ethernet header.
    public let packet: [UInt8]
}

// MARK: Wire encoding

@inline(__always)
func ovsAttr<T: RawRepresentable>(_ value: T) -> Int where T.RawValue: BinaryInteger { Int(value.rawValue) }

let maxKeyAttr = Int(__OVS_KEY_ATTR_MAX.rawValue) - 1
let maxTunnelKeyAttr = Int(__OVS_TUNNEL_KEY_ATTR_MAX.rawValue) - 1

private let keyInPort = ovsAttr(OVS_KEY_ATTR_IN_PORT)
private let keyEthernet = ovsAttr(OVS_KEY_ATTR_ETHERNET)
private let keyTunnel = ovsAttr(OVS_KEY_ATTR_TUNNEL)
private let tunID = ovsAttr(OVS_TUNNEL_KEY_ATTR_ID)
private let tunIPv4Src = ovsAttr(OVS_TUNNEL_KEY_ATTR_IPV4_SRC)
private let tunIPv4Dst = ovsAttr(OVS_TUNNEL_KEY_ATTR_IPV4_DST)
private let tunIPv6Src = ovsAttr(OVS_TUNNEL_KEY_ATTR_IPV6_SRC)
private let tunIPv6Dst = ovsAttr(OVS_TUNNEL_KEY_ATTR_IPV6_DST)
private let tunTOS = ovsAttr(OVS_TUNNEL_KEY_ATTR_TOS)
private let tunTTL = ovsAttr(OVS_TUNNEL_KEY_ATTR_TTL)
private let tunDF = ovsAttr(OVS_TUNNEL_KEY_ATTR_DONT_FRAGMENT)
private let tunCsum = ovsAttr(OVS_TUNNEL_KEY_ATTR_CSUM)
private let tunTPSrc = ovsAttr(OVS_TUNNEL_KEY_ATTR_TP_SRC)
private let tunTPDst = ovsAttr(OVS_TUNNEL_KEY_ATTR_TP_DST)
private let actionOutput = ovsAttr(OVS_ACTION_ATTR_OUTPUT)
private let actionSet = ovsAttr(OVS_ACTION_ATTR_SET)

extension MessageBuilder {
    /// Key attributes of `key` (the caller opens the KEY / MASK nest). Host order: in_port;
    /// network order: tunnel id (be64), addresses, ports.
    func putFlowKey(_ key: FlowKey) {
        if let port = key.inPort { putU32(keyInPort, port) }
        if let eth = key.ethernet { putBytes(keyEthernet, eth.source + eth.destination) }
        if let tunnel = key.tunnel { nest(keyTunnel) { putTunnelKey(tunnel) } }
    }

    func putTunnelKey(_ t: TunnelKey) {
        putU64(tunID, t.id.bigEndian)
        if t.ipv4Source != [0, 0, 0, 0] { putBytes(tunIPv4Src, t.ipv4Source) }
        if t.ipv4Destination != [0, 0, 0, 0] { putBytes(tunIPv4Dst, t.ipv4Destination) }
        if t.ipv6Source != TunnelKey.noIPv6 { putBytes(tunIPv6Src, t.ipv6Source) }
        if t.ipv6Destination != TunnelKey.noIPv6 { putBytes(tunIPv6Dst, t.ipv6Destination) }
        if t.tos != 0 { putBytes(tunTOS, [t.tos]) }
        putBytes(tunTTL, [t.ttl])
        if t.dontFragment { putFlag(tunDF) }
        if t.checksum { putFlag(tunCsum) }
        if t.sourcePort != 0 { putU16(tunTPSrc, t.sourcePort.bigEndian) }
        if t.destinationPort != 0 { putU16(tunTPDst, t.destinationPort.bigEndian) }
    }

    /// Action attributes, in order (the caller opens the ACTIONS nest).
    func putActions(_ actions: [FlowAction]) {
        for action in actions {
            switch action {
            case .output(let port): putU32(actionOutput, port)
            case .setTunnel(let tunnel): nest(actionSet) { nest(keyTunnel) { putTunnelKey(tunnel) } }
            case .other(let type, let payload): putBytes(type, payload)
            }
        }
    }
}

/// Parses a KEY or MASK nest into the model; attributes outside it (recirc id, priority,
/// ethertype, L3/L4 fields…) are ignored. An all-zero tunnel (what a mask dump reports for a
/// flow without tunnel match) becomes nil.
func parseFlowKey(_ attr: UnsafePointer<nlattr>) -> FlowKey {
    let table = AttributeTable(nested: attr, maxType: maxKeyAttr)
    var key = FlowKey()
    key.inPort = table.u32(keyInPort)
    if let eth = table.bytes(keyEthernet), eth.count == 12 {
        key.ethernet = EthernetKey(source: Array(eth[0..<6]), destination: Array(eth[6..<12]))
    }
    if let nest = table[keyTunnel] {
        let tunnel = parseTunnelKey(nest)
        key.tunnel = tunnel.isZero ? nil : tunnel
    }
    return key
}

func parseTunnelKey(_ attr: UnsafePointer<nlattr>) -> TunnelKey {
    let t = AttributeTable(nested: attr, maxType: maxTunnelKeyAttr)
    func address(_ type: Int, _ size: Int) -> [UInt8] {
        if let b = t.bytes(type), b.count == size { return b }
        return [UInt8](repeating: 0, count: size)
    }
    return TunnelKey(id: t.u64(tunID).map { UInt64(bigEndian: $0) } ?? 0,
                     ipv4Source: address(tunIPv4Src, 4), ipv4Destination: address(tunIPv4Dst, 4),
                     ipv6Source: address(tunIPv6Src, 16), ipv6Destination: address(tunIPv6Dst, 16),
                     tos: t.bytes(tunTOS)?.first ?? 0, ttl: t.bytes(tunTTL)?.first ?? 0,
                     dontFragment: t[tunDF] != nil, checksum: t[tunCsum] != nil,
                     sourcePort: t.u16(tunTPSrc).map { UInt16(bigEndian: $0) } ?? 0,
                     destinationPort: t.u16(tunTPDst).map { UInt16(bigEndian: $0) } ?? 0)
}

/// Parses an ACTIONS nest, keeping order.
func parseActions(_ attr: UnsafePointer<nlattr>) -> [FlowAction] {
    AttributeTable.ordered(nested: attr).map { type, a in
        if type == actionOutput, mnl_attr_get_payload_len(a) == 4 {
            return .output(port: mnl_attr_get_u32(a))
        }
        if type == actionSet {
            let inner = AttributeTable.ordered(nested: a)
            if inner.count == 1, inner[0].type == keyTunnel {
                return .setTunnel(parseTunnelKey(inner[0].attr))
            }
        }
        return .other(type: type, payload: attributePayload(a))
    }
}
