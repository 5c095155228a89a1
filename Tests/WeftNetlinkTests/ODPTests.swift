import CMnl
import Foundation
import XCTest
@testable import WeftNetlink

/// The Open vSwitch kernel datapath client. Everything happens in fresh `wodp*` namespaces.
/// Needs root and the openvswitch module, which this machine's kernel lacks: run inside the VM
/// (docs/netlink.md, "ODP client"); elsewhere these tests skip.
final class ODPTests: XCTestCase {
    let macA: [UInt8] = [0x02, 0x57, 0x4f, 0x44, 0x50, 0x0a]
    let macB: [UInt8] = [0x02, 0x57, 0x4f, 0x44, 0x50, 0x0b]
    /// IEEE "local experimental" ethertype: nothing in the kernel answers or sends it.
    let experimentalEthertype: [UInt8] = [0x88, 0xb5]

    // MARK: Without the module

    /// nlctrl itself is always there: resolution and multicast group ids work on any kernel.
    func testGenericNetlinkResolvesFamiliesAndGroups() throws {
        let socket = try NetlinkSocket(bus: NETLINK_GENERIC)
        let ctrl = try XCTUnwrap(socket.genericFamily(named: "nlctrl"))
        XCTAssertEqual(ctrl.id, 0x10)
        XCTAssertNotNil(ctrl.multicastGroups["notify"], "\(ctrl.multicastGroups)")
        XCTAssertNil(try socket.genericFamily(named: "weft_nofamily"))
    }

    /// Either the module is there, or opening says exactly what status will show.
    func testOpenFailsPlainlyWithoutModule() throws {
        do {
            _ = try ODPClient.open()
        } catch let error as ODPError {
            XCTAssertEqual(error, .moduleUnavailable)
            XCTAssertEqual("fastdp unavailable: \(error)", "fastdp unavailable: kernel has no openvswitch module")
        }
    }

    // MARK: Datapaths and vports

    func testDatapathCreateAdoptInternalPortDelete() throws {
        try withODP { ns, odp in
            let upcalls = try odp.openUpcallSocket()
            XCTAssertNotEqual(upcalls.pid, 0)
            let ifindex = try odp.createDatapath(name: "weftdp", upcallPID: upcalls.pid)
            XCTAssertGreaterThan(ifindex, 0)

            let info = try XCTUnwrap(odp.datapath(named: "weftdp"))
            XCTAssertEqual(info.ifindex, ifindex)
            XCTAssertEqual(info.userFeatures, UInt32(OVS_DP_F_UNALIGNED) | UInt32(OVS_DP_F_VPORT_PIDS))
            XCTAssertEqual(info.flows, 0)
            // Port 0 is the internal port, a netdev named like the datapath with the same ifindex.
            XCTAssertEqual(try odp.vports(datapath: ifindex),
                           [VportInfo(portNo: 0, type: .internal, name: "weftdp", upcallPIDs: [upcalls.pid])])
            XCTAssertEqual(try ns.netlink.link(named: "weftdp")?.index, ifindex)
            XCTAssertEqual(try ns.netlink.link(named: "weftdp")?.kind, "openvswitch")

            // Again: adopted, same ifindex; the new upcall pid reaches port 0.
            let second = try odp.openUpcallSocket()
            XCTAssertEqual(try odp.createDatapath(name: "weftdp", upcallPID: second.pid), ifindex)
            XCTAssertEqual(try odp.vports(datapath: ifindex).first?.upcallPIDs, [second.pid])

            // A netdev of that name that is not a datapath is not adopted.
            try ns.netlink.createVeth(name: "notadp", peerName: "notadp1", peerNamespaceFd: nil, mtu: 1500)
            XCTAssertThrowsError(try odp.createDatapath(name: "notadp", upcallPID: 0)) { error in
                XCTAssertEqual((error as? NetlinkError)?.errno, EEXIST, "\(error)")
            }
            XCTAssertNil(try odp.datapath(named: "notadp"))

            try odp.deleteDatapath(name: "weftdp")
            XCTAssertNil(try odp.datapath(named: "weftdp"))
            XCTAssertNil(try ns.netlink.link(named: "weftdp"))
            try odp.deleteDatapath(name: "weftdp")  // gone already: still success
        }
    }

    func testVXLANAndNetdevVports() throws {
        try withODP { ns, odp in
            let dp = try odp.createDatapath(name: "weftdp", upcallPID: 0)
            try ns.netlink.createVeth(name: "vodp0a", peerName: "vodp0b", peerNamespaceFd: nil, mtu: 1500)

            let vethPort = try odp.createNetdevVport(datapath: dp, ifname: "vodp0a", upcallPID: 0)
            let vxlanPort = try odp.createVXLANVport(datapath: dp, name: "vxlan-odp", port: 6784, upcallPID: 0)
            XCTAssertGreaterThanOrEqual(vethPort, 1)
            XCTAssertNotEqual(vethPort, vxlanPort)
            let ports = try odp.vports(datapath: dp).sorted { $0.portNo < $1.portNo }
            XCTAssertEqual(ports.map(\.name), ["weftdp", "vodp0a", "vxlan-odp"])
            XCTAssertEqual(ports.map(\.type), [.internal, .netdev, .vxlan])
            XCTAssertEqual(ports.map(\.portNo), [0, vethPort, vxlanPort])

            // The veth is enslaved to the datapath; the VXLAN vport is a real vxlan netdev, up,
            // in external (collect-metadata) mode on the given UDP port.
            XCTAssertEqual(try ns.netlink.link(named: "vodp0a")?.masterIndex, dp)
            let vxlan = try XCTUnwrap(ns.netlink.link(named: "vxlan-odp"))
            XCTAssertEqual(vxlan.kind, "vxlan")
            XCTAssertTrue(vxlan.isUp)
            let details = try ip("-n", ns.name, "-d", "link", "show", "vxlan-odp")
            XCTAssertTrue(details.contains("dstport 6784"), details)
            XCTAssertTrue(details.contains("external"), details)
            XCTAssertTrue(try ip("-n", ns.name, "-d", "link", "show", "vodp0a").contains("openvswitch_slave"))

            // One vport per UDP port: the kernel refuses a second external vxlan device on 6784
            // with EEXIST (not EADDRINUSE: the vxlan driver finds the twin before binding).
            XCTAssertThrowsError(try odp.createVXLANVport(datapath: dp, name: "vxlan-odp2", port: 6784, upcallPID: 0)) {
                XCTAssertEqual(($0 as? NetlinkError)?.errno, EEXIST, "\($0)")
            }
            XCTAssertNil(try ns.netlink.link(named: "vxlan-odp2"))

            try odp.deleteVport(datapath: dp, portNo: vxlanPort)
            try odp.deleteVport(datapath: dp, portNo: vethPort)
            try odp.deleteVport(datapath: dp, portNo: vethPort)  // missing: success
            XCTAssertEqual(try odp.vports(datapath: dp).map(\.portNo), [0])
            XCTAssertNil(try ns.netlink.link(named: "vxlan-odp"))
            XCTAssertNil(try ns.netlink.link(named: "vodp0a")?.masterIndex)

            // The port can be taken again at once (deletion may finish asynchronously: retried).
            let again = try odp.createVXLANVport(datapath: dp, name: "vxlan-odp", port: 6784, upcallPID: 0)
            XCTAssertGreaterThanOrEqual(again, 1)
            try odp.deleteDatapath(name: "weftdp")
            XCTAssertNil(try ns.netlink.link(named: "vxlan-odp"), "deleting the datapath removes its ports")
        }
    }

    // MARK: Flows

    func testFlowInstallDumpReplaceDelete() throws {
        try withODP { ns, odp in
            let dp = try odp.createDatapath(name: "weftdp", upcallPID: 0)
            try ns.netlink.createVeth(name: "vodp0a", peerName: "vodp0b", peerNamespaceFd: nil, mtu: 1500)
            let vethPort = try odp.createNetdevVport(datapath: dp, ifname: "vodp0a", upcallPID: 0)
            let vxlanPort = try odp.createVXLANVport(datapath: dp, name: "vxlan-odp", port: 6784, upcallPID: 0)

            // Egress: from the veth, MAC A → MAC B, encapsulated towards 192.168.77.2, VNI 0x12345.
            let egress = FlowKey(inPort: vethPort, ethernet: EthernetKey(source: macA, destination: macB))
            let tunnel = TunnelKey(id: 0x12345, ipv4Source: [192, 168, 77, 1], ipv4Destination: [192, 168, 77, 2],
                                   ttl: 64, dontFragment: true)
            let encapsulate: [FlowAction] = [.setTunnel(tunnel), .output(port: vxlanPort)]
            try odp.createFlow(datapath: dp, key: egress, mask: egress.exactMask, actions: encapsulate)

            // Ingress: from the VXLAN port with that tunnel id from that peer, MAC B → MAC A.
            let ingress = FlowKey(inPort: vxlanPort, ethernet: EthernetKey(source: macB, destination: macA),
                                  tunnel: TunnelKey(id: 0x12345, ipv4Source: [192, 168, 77, 2],
                                                    ipv4Destination: [192, 168, 77, 1]))
            try odp.createFlow(datapath: dp, key: ingress, mask: ingress.exactMask, actions: [.output(port: vethPort)])

            var flows = try odp.flows(datapath: dp)
            XCTAssertEqual(flows.count, 2)
            let e = try XCTUnwrap(flows.first { $0.key.inPort == vethPort })
            XCTAssertEqual(e.key, egress)
            XCTAssertEqual(e.mask, egress.exactMask)
            XCTAssertEqual(e.actions, encapsulate)
            XCTAssertEqual(e.packets, 0)
            XCTAssertNil(e.usedMillis)
            let i = try XCTUnwrap(flows.first { $0.key.inPort == vxlanPort })
            XCTAssertEqual(i.key, ingress)
            XCTAssertEqual(i.mask, ingress.exactMask)
            XCTAssertEqual(i.actions, [.output(port: vethPort)])
            XCTAssertEqual(try odp.datapath(named: "weftdp")?.flows, 2)

            // The same key again (EEXIST): its actions are replaced, still one flow for the key.
            try odp.createFlow(datapath: dp, key: egress, mask: egress.exactMask, actions: [.output(port: 0)])
            flows = try odp.flows(datapath: dp)
            XCTAssertEqual(flows.count, 2)
            XCTAssertEqual(flows.first { $0.key == egress }?.actions, [.output(port: 0)])
            // …and with another mask (source MAC wildcarded) the flow is recreated with it.
            var looser = egress.exactMask
            looser.ethernet?.source = [0, 0, 0, 0, 0, 0]
            try odp.createFlow(datapath: dp, key: egress, mask: looser, actions: encapsulate)
            flows = try odp.flows(datapath: dp)
            XCTAssertEqual(flows.count, 2)
            XCTAssertEqual(flows.first { $0.key == egress }?.mask, looser)
            XCTAssertEqual(flows.first { $0.key == egress }?.actions, encapsulate)

            XCTAssertTrue(try odp.deleteFlow(datapath: dp, key: egress))
            XCTAssertFalse(try odp.deleteFlow(datapath: dp, key: egress))
            XCTAssertEqual(try odp.flows(datapath: dp).map(\.key), [ingress])
            try odp.flushFlows(datapath: dp)
            XCTAssertEqual(try odp.flows(datapath: dp), [])
            try odp.deleteDatapath(name: "weftdp")
        }
    }

    // MARK: Upcalls and execute

    /// A frame into a veth port with no flow comes up as a MISS naming that port; executing it
    /// with OUTPUT(other port) delivers it out of the other veth. A flow then forwards it alone.
    func testMissUpcallExecuteAndFlowForwarding() throws {
        try withODP { ns, odp in
            let upcalls = try odp.openUpcallSocket()
            let dp = try odp.createDatapath(name: "weftdp", upcallPID: upcalls.pid)
            let nl = ns.netlink
            try nl.createVeth(name: "vodp1a", peerName: "vodp1b", peerNamespaceFd: nil, mtu: 1500)
            try nl.createVeth(name: "vodp2a", peerName: "vodp2b", peerNamespaceFd: nil, mtu: 1500)
            for name in ["vodp1a", "vodp1b", "vodp2a", "vodp2b", "weftdp"] { try nl.setUp(name, true) }
            let port1 = try odp.createNetdevVport(datapath: dp, ifname: "vodp1a", upcallPID: upcalls.pid)
            let port2 = try odp.createNetdevVport(datapath: dp, ifname: "vodp2a", upcallPID: upcalls.pid)
            let sender = try PacketSocket(ns, "vodp1b")
            let receiver = try PacketSocket(ns, "vodp2b")

            let frame = macB + macA + experimentalEthertype + Array("weft odp miss".utf8) + [UInt8](repeating: 0, count: 33)
            try sender.send(frame)
            let miss = try XCTUnwrap(waitForMiss(upcalls) { $0.packet == frame }, "no miss upcall for the frame")
            XCTAssertEqual(miss.datapath, dp)
            XCTAssertEqual(miss.key.inPort, port1)
            XCTAssertEqual(miss.key.ethernet, EthernetKey(source: macA, destination: macB))
            XCTAssertNil(miss.key.tunnel)
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(odp.datapath(named: "weftdp")).misses, 1)

            try odp.execute(datapath: dp, packet: miss.packet, key: miss.key, actions: [.output(port: port2)])
            XCTAssertEqual(try receiver.receive(timeoutMillis: 5000) { $0 == frame }, frame)

            // With a flow the datapath forwards by itself: no upcall, the flow counts the packet.
            let key = FlowKey(inPort: port1, ethernet: EthernetKey(source: macA, destination: macB))
            try odp.createFlow(datapath: dp, key: key, mask: key.exactMask, actions: [.output(port: port2)])
            let second = macB + macA + experimentalEthertype + Array("weft odp flow".utf8) + [UInt8](repeating: 0, count: 33)
            try sender.send(second)
            XCTAssertEqual(try receiver.receive(timeoutMillis: 5000) { $0 == second }, second)
            XCTAssertNil(try waitForMiss(upcalls, timeoutMillis: 300) { $0.packet == second })
            let flow = try XCTUnwrap(odp.flows(datapath: dp).first { $0.key == key })
            XCTAssertEqual(flow.packets, 1)
            XCTAssertEqual(flow.bytes, UInt64(second.count))
            XCTAssertNotNil(flow.usedMillis)

            try odp.deleteVport(datapath: dp, portNo: port1)
            try odp.deleteVport(datapath: dp, portNo: port2)
            try odp.deleteDatapath(name: "weftdp")
            XCTAssertEqual(upcalls.overflows, 0)
        }
    }

    /// Two hosts (namespaces) joined by an underlay veth, each with a datapath and a VXLAN vport:
    /// a flow on A encapsulates (set tunnel + output vxlan); B gets a MISS from its VXLAN port
    /// whose tunnel key carries the VNI and A's address.
    func testVXLANEncapsulationArrivesAsTunnelMiss() throws {
        try withODP(hosts: 2) { hosts in
            let (a, b) = (hosts[0], hosts[1])
            try a.ns.netlink.createVeth(name: "under", peerName: "under", peerNamespaceFd: b.ns.fd, mtu: 1500)
            try a.ns.netlink.addAddress("under", cidr: "192.168.77.1/24")
            try b.ns.netlink.addAddress("under", cidr: "192.168.77.2/24")
            try a.ns.netlink.setUp("under", true)
            try b.ns.netlink.setUp("under", true)

            let upcallsB = try b.odp.openUpcallSocket()
            let dpA = try a.odp.createDatapath(name: "weftdp", upcallPID: 0)
            let dpB = try b.odp.createDatapath(name: "weftdp", upcallPID: upcallsB.pid)
            try a.ns.netlink.createVeth(name: "vodp1a", peerName: "vodp1b", peerNamespaceFd: nil, mtu: 1500)
            try a.ns.netlink.setUp("vodp1a", true)
            try a.ns.netlink.setUp("vodp1b", true)
            let vethA = try a.odp.createNetdevVport(datapath: dpA, ifname: "vodp1a", upcallPID: 0)
            let vxlanA = try a.odp.createVXLANVport(datapath: dpA, name: "vxlan-odp", port: 6784, upcallPID: 0)
            let vxlanB = try b.odp.createVXLANVport(datapath: dpB, name: "vxlan-odp", port: 6784,
                                                    upcallPID: upcallsB.pid)

            let key = FlowKey(inPort: vethA, ethernet: EthernetKey(source: macA, destination: macB))
            let tunnel = TunnelKey(id: 0x12345, ipv4Source: [192, 168, 77, 1], ipv4Destination: [192, 168, 77, 2],
                                   ttl: 64, dontFragment: true)
            try a.odp.createFlow(datapath: dpA, key: key, mask: key.exactMask,
                                 actions: [.setTunnel(tunnel), .output(port: vxlanA)])

            let frame = macB + macA + experimentalEthertype + Array("weft odp vxlan".utf8) + [UInt8](repeating: 0, count: 32)
            let sender = try PacketSocket(a.ns, "vodp1b")
            let underlay = try PacketSocket(b.ns, "under")
            // The first packet may be spent on ARP for the underlay peer; send until one arrives.
            var miss: Miss?
            for _ in 0..<10 where miss == nil {
                try sender.send(frame)
                miss = try waitForMiss(upcallsB, timeoutMillis: 1000) { $0.packet == frame }
            }
            let got = try XCTUnwrap(miss, "no tunnel miss on B")
            XCTAssertEqual(got.datapath, dpB)
            XCTAssertEqual(got.key.inPort, vxlanB)
            XCTAssertEqual(got.key.ethernet, EthernetKey(source: macA, destination: macB))
            let t = try XCTUnwrap(got.key.tunnel)
            XCTAssertEqual(t.id, 0x12345)
            XCTAssertEqual(t.ipv4Source, [192, 168, 77, 1])
            XCTAssertEqual(t.ipv4Destination, [192, 168, 77, 2])
            XCTAssertEqual(t.destinationPort, 6784)

            // On the wire: IPv4/UDP to 6784 with DF set, VXLAN header carrying VNI 0x12345, then
            // the frame. (The receiver's tunnel key does not report DF: checked here instead.)
            let outer = try XCTUnwrap(underlay.receive(timeoutMillis: 3000) { p in
                p.count >= 50 && p[12] == 0x08 && p[13] == 0x00 && p[23] == 17 && p[36] == 0x1a && p[37] == 0x80
            }, "no VXLAN packet on the underlay")
            XCTAssertEqual(outer[20] & 0x40, 0x40, "DF")
            XCTAssertEqual(Array(outer[26..<34]), [192, 168, 77, 1, 192, 168, 77, 2])
            XCTAssertEqual(Array(outer[42..<50]), [0x08, 0, 0, 0, 0x01, 0x23, 0x45, 0])
            XCTAssertEqual(Array(outer[50...]), frame)
            XCTAssertGreaterThan(t.ttl, 0)
            XCTAssertGreaterThanOrEqual(try XCTUnwrap(a.odp.flows(datapath: dpA).first).packets, 1)

            try a.odp.deleteDatapath(name: "weftdp")
            try b.odp.deleteDatapath(name: "weftdp")
        }
    }

    // MARK: Helpers

    struct Host {
        let ns: TestNamespace
        let odp: ODPClient
    }

    /// Skips without root or without the module; otherwise runs `body` with a client in each of
    /// `hosts` fresh namespaces, which are deleted afterwards (with everything in them).
    func withODP(hosts count: Int, _ body: ([Host]) throws -> Void) throws {
        do {
            _ = try ODPClient.open()
        } catch ODPError.moduleUnavailable {
            throw XCTSkip("kernel has no openvswitch module; scripts/test-in-vm.sh runs it in a VM that has one")
        }
        try withNamespaces(count, prefix: "wodp") { namespaces in
            try body(try namespaces.map { Host(ns: $0, odp: try ODPClient.open(inNamespaceFd: $0.fd)) })
        }
    }

    func withODP(_ body: (TestNamespace, ODPClient) throws -> Void) throws {
        try withODP(hosts: 1) { try body($0[0].ns, $0[0].odp) }
    }

    /// The first miss that satisfies `match` within the timeout (other misses, e.g. IPv6
    /// router solicitations of the veths, are skipped).
    func waitForMiss(_ socket: UpcallSocket, timeoutMillis: Int = 5000, _ match: (Miss) -> Bool) throws -> Miss? {
        let deadline = Date().addingTimeInterval(Double(timeoutMillis) / 1000)
        while Date() < deadline {
            let left = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            if let miss = try socket.receive(timeoutMillis: left).first(where: match) { return miss }
        }
        return nil
    }
}

/// An AF_PACKET socket bound to one interface of a test namespace: sends raw frames into it and
/// reads the frames it receives.
final class PacketSocket {
    let fd: Int32

    init(_ ns: TestNamespace, _ ifname: String) throws {
        let index = try XCTUnwrap(ns.netlink.link(named: ifname)).index
        let ethPAll = UInt16(0x0003)  // ETH_P_ALL
        fd = try NetworkNamespace.perform(inNamespaceFd: ns.fd) {
            let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), Int32(ethPAll.bigEndian))
            guard fd >= 0 else { throw NetlinkError(operation: "open packet socket", errno: errno) }
            // struct sockaddr_ll (not imported): u16 family, be16 protocol, s32 ifindex,
            // u16 hatype, u8 pkttype, u8 halen, u8 addr[8]; 20 bytes.
            var address = [UInt8](repeating: 0, count: 20)
            address.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: UInt16(AF_PACKET), toByteOffset: 0, as: UInt16.self)
                raw.storeBytes(of: ethPAll.bigEndian, toByteOffset: 2, as: UInt16.self)
                raw.storeBytes(of: index, toByteOffset: 4, as: Int32.self)
            }
            let rc = address.withUnsafeBytes {
                bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
            }
            guard rc == 0 else {
                let code = errno
                close(fd)
                throw NetlinkError(operation: "bind packet socket to '\(ifname)'", errno: code)
            }
            return fd
        }
    }

    deinit { close(fd) }

    func send(_ frame: [UInt8]) throws {
        let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard n == frame.count else { throw NetlinkError(operation: "send a frame", errno: errno) }
    }

    /// The first received frame that satisfies `match` within the timeout, or nil.
    func receive(timeoutMillis: Int, _ match: ([UInt8]) -> Bool) throws -> [UInt8]? {
        let deadline = Date().addingTimeInterval(Double(timeoutMillis) / 1000)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0, match(Array(buffer[0..<n])) { return Array(buffer[0..<n]) }
        }
        return nil
    }
}
