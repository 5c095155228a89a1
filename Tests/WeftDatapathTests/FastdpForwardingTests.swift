import Glibc
import WeftNetlink
import WeftWire
import WeftMesh
import XCTest
@testable import WeftDatapath

/// The fast datapath's miss decisions, in memory: a forwarding table of real session objects
/// (no sockets), a MAC table, and the two ports.
final class FastdpForwardingTests: XCTestCase {
    let ports = FastdpPorts(bridge: 1, vxlan: 2)
    let own: UInt16 = 10
    let local: [UInt8] = [0x02, 0, 0, 0, 0, 0x0a]
    let remoteB: [UInt8] = [0x02, 0, 0, 0, 0, 0x0b]
    let remoteC: [UInt8] = [0x02, 0, 0, 0, 0, 0x0c]
    let broadcast: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]

    func session(_ id: UInt16, ip: String, fastdp: Bool) -> SleeveSession {
        let s = SleeveSession(peerShortId: id, keys: SessionKeys(txEpoch: 0, tx: nil, rx: []),
                              address: UnderlayAddress(ip: IPAddress(ip)!, port: 6783, socketFamily: AF_INET6)!, underlayMTU: 1500)
        s.fastdp.selected.store(fastdp, ordering: .relaxed)
        s.fastdp.tunnelPort.store(6784, ordering: .relaxed)
        return s
    }

    /// Us (10) with neighbours B (11, fastdp) and C (12, sleeve); D (13) is reached through B.
    func table(bFastdp: Bool = true) -> (ForwardingTable, SleeveSession, SleeveSession) {
        let b = session(11, ip: "198.18.0.2", fastdp: bFastdp)
        let c = session(12, ip: "198.18.0.3", fastdp: false)
        let t = ForwardingTable(ownShortId: own, sessions: [11: b, 12: c], nextHop: [11: 11, 12: 12, 13: 11],
                                broadcast: [10: [11, 12], 11: [12], 13: [12]])
        return (t, b, c)
    }

    func mac(_ bytes: [UInt8]) -> UInt64 { FastdpForwarding.mac(bytes) }

    func tunnelTo(_ ip: [UInt8], source: UInt16, destination: UInt16) -> [FlowAction] {
        [.setTunnel(TunnelKey(id: FastdpWire.vni(source: source, destination: destination), ipv4Destination: ip,
                              ttl: 64, dontFragment: true, destinationPort: 6784)), .output(port: ports.vxlan)]
    }

    func testVNICarriesSourceAndDestinationAndBroadcast() {
        XCTAssertEqual(FastdpWire.vni(source: 0x123, destination: 0x456), 0x123456)
        XCTAssertEqual(FastdpWire.peers(vni: 0x123456).source, 0x123)
        XCTAssertEqual(FastdpWire.peers(vni: 0x123456).destination, 0x456)
        XCTAssertEqual(FastdpWire.vni(source: 0xFFF, destination: 0), 0xFFF000)
        XCTAssertEqual(FastdpWire.vni(source: 7, destination: Sleeve.broadcastShortId), 0x007007)
        XCTAssertEqual(FastdpWire.peers(vni: 0x007007).destination, Sleeve.broadcastShortId)
        XCTAssertLessThan(FastdpWire.vni(source: 0xFFF, destination: 0xFFE), 1 << 24)
    }

    func testHeartbeatRoundTripsAtFullSizeAndRejectsOthers() throws {
        let h = FastdpHeartbeat(sender: 0xABC, stamp: 123_456_789, echo: -1)
        let frame = h.frame(source: local, size: 1374 + 14)
        XCTAssertEqual(frame.count, 1388)
        XCTAssertEqual(Array(frame[0..<6]), FastdpHeartbeat.destination)
        XCTAssertEqual(Array(frame[6..<12]), local)
        XCTAssertEqual(FastdpHeartbeat(frame: frame), h)
        XCTAssertEqual(h.frame(source: local, size: 10).count, FastdpHeartbeat.minimumSize)
        var wrong = frame
        wrong[14] = UInt8(ascii: "X")
        XCTAssertNil(FastdpHeartbeat(frame: wrong))
        XCTAssertNil(FastdpHeartbeat(frame: Array(frame[0..<20])))
        XCTAssertNil(FastdpHeartbeat(frame: broadcast + Array(frame[6...])))
        XCTAssertEqual(Overhead.fastdpIPv4, 50)
    }

    /// The plan for a frame from the bridge, `source` → `destination`, with `learned` MACs known.
    func fromBridge(_ source: [UInt8], to destination: [UInt8], learned: [([UInt8], UInt16)] = [], bFastdp: Bool = true) -> FastdpPlan {
        let macs = MACTable()
        for (address, peer) in learned { macs.learn(mac(address), peer: peer) }
        return FastdpForwarding.plan(key: FlowKey(inPort: ports.bridge, ethernet: EthernetKey(source: source, destination: destination)),
                                     table: table(bFastdp: bFastdp).0, macs: macs, ports: ports)
    }

    func testLocalUnicastToFastdpNeighbourTunnelsAndInstalls() {
        let plan = fromBridge(local, to: remoteB, learned: [(remoteB, 11)])
        XCTAssertEqual(plan.actions, tunnelTo([198, 18, 0, 2], source: own, destination: 11))
        XCTAssertTrue(plan.install)
        XCTAssertEqual(plan.handoffs, [])
    }

    func testLocalUnicastThroughSleeveNeighbourIsHandedOffNotInstalled() {
        let plan = fromBridge(local, to: remoteB, learned: [(remoteB, 13)], bFastdp: false)  // D, behind B
        XCTAssertEqual(plan.actions, [])
        XCTAssertEqual(plan.handoffs, [SleeveHandoff(hop: 11, source: own, destination: 13)])
        XCTAssertFalse(plan.install)
    }

    func testLocalBroadcastGoesOnlyToFastdpHopsOfOwnTree() {
        let plan = fromBridge(local, to: broadcast)
        XCTAssertEqual(plan.actions, tunnelTo([198, 18, 0, 2], source: own, destination: Sleeve.broadcastShortId))
        XCTAssertEqual(plan.handoffs, [], "C is on sleeve, which had its own copy from the bridge")
        XCTAssertTrue(plan.install)
    }

    func testRemoteSourceComingBackFromTheBridgeIsDropped() {
        let plan = fromBridge(remoteC, to: broadcast, learned: [(remoteC, 12)])
        XCTAssertEqual(plan.actions, [])
        XCTAssertEqual(plan.handoffs, [])
        XCTAssertTrue(plan.install, "a drop flow")
    }

    func testTunnelledFrameForUsIsDeliveredAndItsSourceLearned() {
        let (t, _, _) = table()
        let key = FlowKey(inPort: ports.vxlan, ethernet: EthernetKey(source: remoteB, destination: local),
                          tunnel: TunnelKey(id: FastdpWire.vni(source: 11, destination: own), ipv4Source: [198, 18, 0, 2],
                                            ipv4Destination: [198, 18, 0, 1]))
        let plan = FastdpForwarding.plan(key: key, table: t, macs: MACTable(), ports: ports)
        XCTAssertEqual(plan.actions, [.output(port: ports.bridge)])
        XCTAssertTrue(plan.install)
        XCTAssertEqual(plan.learn?.mac, mac(remoteB))
        XCTAssertEqual(plan.learn?.peer, 11)
    }

    func testTunnelledBroadcastIsDeliveredAndRelayedAlongTheSourceTree() {
        let (t, _, _) = table()
        // From D (13) through B: our part of D's tree is C, on sleeve: handed off, no flow.
        let key = FlowKey(inPort: ports.vxlan, ethernet: EthernetKey(source: remoteB, destination: broadcast),
                          tunnel: TunnelKey(id: FastdpWire.vni(source: 13, destination: Sleeve.broadcastShortId),
                                            ipv4Source: [198, 18, 0, 2], ipv4Destination: [198, 18, 0, 1]))
        let plan = FastdpForwarding.plan(key: key, table: t, macs: MACTable(), ports: ports)
        XCTAssertEqual(plan.actions, [.output(port: ports.bridge)])
        XCTAssertEqual(plan.handoffs, [SleeveHandoff(hop: 12, source: 13, destination: Sleeve.broadcastShortId)])
        XCTAssertFalse(plan.install)
        // From B itself: B's tree says C, but never back to the sender.
        var fromB = key
        fromB.tunnel?.id = FastdpWire.vni(source: 11, destination: Sleeve.broadcastShortId)
        let t2 = ForwardingTable(ownShortId: own, sessions: [11: table().1, 12: table().2], nextHop: [11: 11, 12: 12],
                                 broadcast: [11: [11]])
        let plan2 = FastdpForwarding.plan(key: fromB, table: t2, macs: MACTable(), ports: ports)
        XCTAssertEqual(plan2.actions, [.output(port: ports.bridge)])
        XCTAssertEqual(plan2.handoffs, [])
        XCTAssertTrue(plan2.install)
    }

    func testOwnFramesAndForeignPortsAreNotForwarded() {
        let (t, _, _) = table()
        let looped = FlowKey(inPort: ports.vxlan, ethernet: EthernetKey(source: local, destination: broadcast),
                             tunnel: TunnelKey(id: FastdpWire.vni(source: own, destination: 11), ipv4Source: [198, 18, 0, 2]))
        XCTAssertEqual(FastdpForwarding.plan(key: looped, table: t, macs: MACTable(), ports: ports).actions, [])
        let other = FlowKey(inPort: 0, ethernet: EthernetKey(source: local, destination: broadcast))
        let plan = FastdpForwarding.plan(key: other, table: t, macs: MACTable(), ports: ports)
        XCTAssertEqual(plan.actions, [])
        XCTAssertFalse(plan.install)
    }

    func testModeChangeChangesTheDecisionSoRevalidationDeletesTheFlow() {
        let (t, b, _) = table()
        let macs = MACTable()
        macs.learn(mac(remoteB), peer: 11)
        let key = FlowKey(inPort: ports.bridge, ethernet: EthernetKey(source: local, destination: remoteB))
        let before = FastdpForwarding.plan(key: key, table: t, macs: macs, ports: ports)
        b.fastdp.selected.store(false, ordering: .relaxed)
        let after = FastdpForwarding.plan(key: key, table: t, macs: macs, ports: ports)
        XCTAssertNotEqual(before, after)
        XCTAssertFalse(after.install)
    }

    func testHeartbeatStalenessNeedsBothDirections() {
        let state = FastdpPeerState()
        XCTAssertNil(state.staleness(now: 100))
        state.heard(stamp: 5, echo: 0, now: 90)
        XCTAssertNil(state.staleness(now: 100), "heard from them, but they never echoed ours")
        state.heard(stamp: 6, echo: 40, now: 95)
        XCTAssertEqual(state.staleness(now: 100), 5, "timed from when the echo arrived")
        XCTAssertEqual(state.peerStamp.load(ordering: .relaxed), 6)
        // They keep sending but echo nothing newer: ours no longer reach them.
        state.heard(stamp: 7, echo: 40, now: 300)
        XCTAssertEqual(state.staleness(now: 310), 215)
    }

    /// A neighbour on an IPv6 underlay: its tunnel names the IPv6 destination with the outer UDP
    /// checksum on, and a broadcast it tunnels to us is recognised as its own by the IPv6 source.
    func testIPv6NeighbourTunnelsOverIPv6AndIsKnownByItsSource() {
        let b = session(11, ip: "fd00::2", fastdp: true)
        let c = session(12, ip: "198.18.0.3", fastdp: true)
        let t = ForwardingTable(ownShortId: own, sessions: [11: b, 12: c], nextHop: [11: 11, 12: 12],
                                broadcast: [10: [11, 12], 11: [11, 12]])
        let macs = MACTable()
        macs.learn(mac(remoteB), peer: 11)
        let out = FastdpForwarding.plan(key: FlowKey(inPort: ports.bridge, ethernet: EthernetKey(source: local, destination: remoteB)),
                                        table: t, macs: macs, ports: ports)
        let v6 = IPAddress("fd00::2")!.bytes
        XCTAssertEqual(out.actions, [.setTunnel(TunnelKey(id: FastdpWire.vni(source: own, destination: 11), ipv6Destination: v6,
                                                          ttl: 64, dontFragment: true, checksum: true, destinationPort: 6784)),
                                     .output(port: ports.vxlan)])
        let key = FlowKey(inPort: ports.vxlan, ethernet: EthernetKey(source: remoteB, destination: broadcast),
                          tunnel: TunnelKey(id: FastdpWire.vni(source: 11, destination: Sleeve.broadcastShortId),
                                            ipv6Source: v6, ipv6Destination: IPAddress("fd00::1")!.bytes))
        let plan = FastdpForwarding.plan(key: key, table: t, macs: MACTable(), ports: ports)
        // Delivered here and passed on to C only: B's own copy never goes back to B.
        XCTAssertEqual(plan.actions.first, .output(port: ports.bridge))
        XCTAssertFalse(plan.actions.contains { if case .setTunnel(let k) = $0 { return k.ipv6Destination == v6 } else { return false } })
        XCTAssertEqual(t.neighbour(tunnelSource: key.tunnel!.source16), 11)
        XCTAssertEqual(FastdpForwarding.flowKey(key).tunnel?.ipv6Source, v6, "flows from an IPv6 tunnel match its addresses")
        XCTAssertEqual(key.exactMask.tunnel?.ipv6Source, [UInt8](repeating: 0xff, count: 16))
        XCTAssertEqual(key.exactMask.tunnel?.ipv4Destination, TunnelKey.noIPv4)
    }
}
