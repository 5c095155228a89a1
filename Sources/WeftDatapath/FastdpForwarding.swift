// The fast datapath's forwarding decision for a packet no kernel flow matched: what to do with
// it, and whether the same actions may be installed as a flow. Pure: it reads a forwarding table
// snapshot and the MAC table and changes neither, so it is tested in memory, and the same
// function re-checks installed flows when routes, modes or MACs change (revalidation).
import Glibc
import Synchronization
import WeftNetlink
import WeftWire

/// One neighbour's side of the fast datapath. The router sets `selected` from the mode decision;
/// the miss thread records heartbeats; everything is atomic.
public final class FastdpPeerState: Sendable {
    /// Whether frames whose next hop is this neighbour go through the fast datapath.
    public let selected = Atomic<Bool>(false)
    /// The UDP port of the neighbour's VXLAN vport (its --port + 1); 0 until known.
    public let tunnelPort = Atomic<UInt16>(0)
    /// Our monotonic nanoseconds when a heartbeat from the neighbour last arrived; 0 for never.
    public let lastHeard = Atomic<Int64>(0)
    /// The neighbour's stamp in that heartbeat: echoed in ours.
    public let peerStamp = Atomic<Int64>(0)
    /// The newest of our own stamps the neighbour echoed: proves our heartbeats reach it.
    public let echoed = Atomic<Int64>(0)
    /// Our monotonic nanoseconds when `echoed` last moved forward. Timed on arrival, not from the
    /// echoed stamp: that one is older by the round trip and the peer's heartbeat interval.
    public let echoAdvanced = Atomic<Int64>(0)

    public init() {}

    /// Records a heartbeat from the neighbour (miss thread).
    public func heard(stamp: Int64, echo: Int64, now: Int64) {
        lastHeard.store(now, ordering: .relaxed)
        peerStamp.store(stamp, ordering: .relaxed)
        if echo > echoed.load(ordering: .relaxed) {
            echoed.store(echo, ordering: .relaxed)
            echoAdvanced.store(now, ordering: .relaxed)
        }
    }

    /// How long since both directions of the VXLAN path last proved to work at the overlay MTU
    /// (a heartbeat from the neighbour, and one of ours echoed back); nil when not yet.
    public func staleness(now: Int64) -> Int64? {
        let heard = lastHeard.load(ordering: .relaxed)
        let echo = echoAdvanced.load(ordering: .relaxed)
        guard heard != 0, echo != 0 else { return nil }
        return now - min(heard, echo)
    }
}

/// Where a packet entered the datapath, by port.
public struct FastdpPorts: Sendable, Equatable {
    /// The datapath end of the veth pair joined to the `weft` bridge.
    public let bridge: UInt32
    /// The VXLAN vport.
    public let vxlan: UInt32

    public init(bridge: UInt32, vxlan: UInt32) {
        self.bridge = bridge
        self.vxlan = vxlan
    }
}

/// A frame the fast datapath hands to sleeve, because its next hop is not on fastdp.
public struct SleeveHandoff: Equatable, Sendable {
    public let hop: UInt16
    public let source: UInt16
    public let destination: UInt16
}

/// What to do with one missed packet.
public struct MACOwner: Equatable, Sendable {
    public let mac: UInt64
    public let peer: UInt16
}

public struct FastdpPlan: Equatable, Sendable {
    /// Run by the kernel on the packet; empty = drop.
    public var actions: [FlowAction] = []
    /// Copies that leave through sleeve, one per hop, from the miss thread.
    public var handoffs: [SleeveHandoff] = []
    /// Whether a flow with `actions` may be installed: not when anything goes through sleeve
    /// (those packets must keep coming up) and not for packets that are not ours to decide.
    public var install = false
    /// A remote source MAC to learn, and the peer it belongs to.
    public var learn: MACOwner?

    static let dropForever = FastdpPlan(install: true)
    static let ignore = FastdpPlan()
}

public enum FastdpForwarding {
    /// The key a flow for `key` is installed under: in_port and both MACs, plus the tunnel id and
    /// addresses for packets from the VXLAN vport (so a flow is per source peer and hop).
    public static func flowKey(_ key: FlowKey) -> FlowKey {
        FlowKey(inPort: key.inPort, ethernet: key.ethernet,
                tunnel: key.tunnel.map {
                    TunnelKey(id: $0.id, ipv4Source: $0.ipv4Source, ipv4Destination: $0.ipv4Destination,
                              ipv6Source: $0.ipv6Source, ipv6Destination: $0.ipv6Destination)
                })
    }

    /// The encapsulation towards neighbour `session` for a frame from `source` to `destination`.
    static func tunnel(to session: SleeveSession, source: UInt16, destination: UInt16) -> [FlowAction]? {
        let address = session.remoteAddress
        let port = session.fastdp.tunnelPort.load(ordering: .relaxed)
        guard port != 0 else { return nil }
        // DF: a frame too large for the path is dropped (and heartbeats notice), never fragmented
        // (IPv6 never fragments on the way). Over IPv6 the outer UDP checksum is on: a zero one
        // is allowed only for tunnels that both ends accept it on (RFC 6935), and on the way
        // some middleboxes drop it.
        var key = TunnelKey(id: FastdpWire.vni(source: source, destination: destination), ttl: 64, dontFragment: true, destinationPort: port)
        if let v4 = address.ipv4Bytes {
            key.ipv4Destination = v4
        } else {
            key.ipv6Destination = address.ip.bytes
            key.checksum = true
        }
        return [.setTunnel(key)]
    }

    /// Adds a copy towards `hop` to `plan`: through the VXLAN vport when that neighbour is on
    /// fastdp, else handed to sleeve.
    static func send(_ plan: inout FastdpPlan, hop: UInt16, source: UInt16, destination: UInt16,
                     table: ForwardingTable, ports: FastdpPorts) {
        guard let session = table.session(hop) else { return }
        if session.fastdp.selected.load(ordering: .relaxed),
           let encapsulate = tunnel(to: session, source: source, destination: destination) {
            plan.actions += encapsulate + [.output(port: ports.vxlan)]
        } else {
            plan.handoffs.append(SleeveHandoff(hop: hop, source: source, destination: destination))
            plan.install = false
        }
    }

    static func mac(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { MACTable.key($0.baseAddress!) }
    }

    /// The decision for a packet that arrived with `key` (in_port, MACs, tunnel) and missed.
    public static func plan(key: FlowKey, table: ForwardingTable, macs: MACTable, ports: FastdpPorts) -> FastdpPlan {
        let own = table.ownShortId
        guard own != 0xFFFF, let ethernet = key.ethernet, ethernet.source.count == 6, ethernet.destination.count == 6 else {
            return .ignore
        }
        let sourceMAC = mac(ethernet.source)
        let multicast = ethernet.destination[0] & 1 != 0
        if key.inPort == ports.bridge {
            // From the bridge: a local workload's frame, or a remote one the bridge passed on
            // after sleeve delivered it (sleeve already relayed it): never send those again.
            if let owner = macs.lookup(sourceMAC), owner != own { return .dropForever }
            var plan = FastdpPlan(install: true)
            if !multicast, let peer = macs.lookup(mac(ethernet.destination)) {
                guard peer != own, let hop = table.nextHopId(to: peer) else { return .ignore }
                send(&plan, hop: hop, source: own, destination: peer, table: table, ports: ports)
                return plan
            }
            // Broadcast, multicast, unknown unicast: along our broadcast tree, the fastdp hops
            // only (the bridge gave sleeve a copy too, and sleeve serves the others).
            for hop in table.broadcast[Int(own)] {
                guard let session = table.session(hop), session.fastdp.selected.load(ordering: .relaxed) else { continue }
                send(&plan, hop: hop, source: own, destination: Sleeve.broadcastShortId, table: table, ports: ports)
            }
            return plan
        }
        guard key.inPort == ports.vxlan, let tunnel = key.tunnel else { return .ignore }
        let (source, destination) = FastdpWire.peers(vni: tunnel.id)
        guard source != own, Int(source) < ForwardingTable.slots else { return .dropForever }
        var plan = FastdpPlan(install: true)
        plan.learn = MACOwner(mac: sourceMAC, peer: source)
        if destination == own {
            plan.actions = [.output(port: ports.bridge)]
        } else if destination == Sleeve.broadcastShortId {
            plan.actions = [.output(port: ports.bridge)]
            // Pass it on along the source's tree, never back to the neighbour it came from.
            let sender = table.neighbour(tunnelSource: tunnel.source16)
            for hop in table.broadcast[Int(source)] where hop != sender {
                send(&plan, hop: hop, source: source, destination: destination, table: table, ports: ports)
            }
        } else {
            guard let hop = table.nextHopId(to: destination) else { return .dropForever }
            send(&plan, hop: hop, source: source, destination: destination, table: table, ports: ports)
        }
        return plan
    }
}

extension ForwardingTable {
    /// The neighbour frames for `destination` leave through; nil when unreachable.
    func nextHopId(to destination: UInt16) -> UInt16? {
        guard Int(destination) < Self.slots else { return nil }
        let hop = nextHop[Int(destination)]
        return hop == 0xFFFF || session(hop) == nil ? nil : hop
    }

    /// The neighbour whose underlay address is `tunnelSource` (16 bytes, IPv4 mapped:
    /// `TunnelKey.source16`); nil for none.
    func neighbour(tunnelSource: [UInt8]) -> UInt16? {
        for (id, session) in sessions.enumerated() {
            if let session, session.remoteAddress.ip.bytes == tunnelSource { return UInt16(id) }
        }
        return nil
    }
}
