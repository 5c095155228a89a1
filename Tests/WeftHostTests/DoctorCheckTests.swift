// The checks of `weft doctor` on facts built in memory: for each, a healthy host and the fault.
import XCTest
import WeftControl
@testable import WeftHost

final class DoctorCheckTests: XCTestCase {
    static let peerName = "02:aa:bb:cc:dd:01"
    static let peerMAC: [UInt8] = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01]

    /// One host: eth0 with an address, the weft bridge with its MAC set, a router answering.
    func healthy(underlayMTU: Int = 1500, overlayMTU: Int = 1420) -> DoctorFacts {
        var facts = DoctorFacts()
        facts.kernelRelease = "6.1.0-18-amd64"
        facts.interfaces = [
            .init(name: "lo", mtu: 65536, addresses: ["127.0.0.1/8"]),
            .init(name: "eth0", mtu: underlayMTU, mac: [0x52, 0x54, 0, 0, 0, 1], addrAssignType: 0, addresses: ["198.18.0.1/24", "fe80::1/64"], driver: "virtio_net"),
            .init(name: "weft", kind: "bridge", mtu: overlayMTU, mac: Self.peerMAC, addrAssignType: 3),
            .init(name: "weft-tap", kind: "tun", mtu: overlayMTU, master: "weft"),
        ]
        facts.bridgeNetfilter = ["bridge-nf-call-iptables": 0, "bridge-nf-call-ip6tables": 0, "bridge-nf-call-arptables": 0]
        facts.ipCounters = .init(before: ["FragFails": 3, "ReasmFails": 1, "FragCreates": 10],
                                 after: ["FragFails": 3, "ReasmFails": 1, "FragCreates": 10], seconds: 3)
        facts.udpPortsBound = [6783]
        facts.firewall = [.init(tool: "nft", lines: ["table inet filter {", "chain input {", "type filter hook input priority filter; policy accept;", "tcp dport 22 accept", "}", "}"])]
        facts.router = RouterStatus(name: Self.peerName, nickname: "a", port: 6783, encryption: true, pskId: "1", trustedSubnets: [],
                                    protocolVersion: 1, peers: 2, connections: ["established": 1], targets: [], uptimeSeconds: 5,
                                    fastdp: FastdpStatus(available: false, reason: "kernel has no openvswitch module", flows: 0),
                                    overlayMTU: overlayMTU)
        facts.connections = [connection(mtu: overlayMTU)]
        return facts
    }

    func connection(mtu: Int?, mode: String? = "sleeve", encrypted: Bool = true, reason: String? = nil) -> ConnectionStatus {
        ConnectionStatus(peer: "02:aa:bb:cc:dd:02", nickname: "b", address: "198.18.0.2:6783", direction: .outbound, state: .established,
                         encrypted: encrypted, trusted: !encrypted, mode: mode, pskId: nil, reason: reason, ready: reason == nil, connectionId: nil, since: nil,
                         cipher: nil, mtu: mtu, keyEpoch: 0, counters: nil)
    }

    func check(_ name: String, _ facts: DoctorFacts) -> DoctorCheck {
        Doctor.run(facts).first { $0.check == name }!
    }

    func testHealthyHostIsAllOkInIssueOrder() {
        let report = Doctor.run(healthy())
        XCTAssertEqual(report.map(\.check), ["mtu", "offload", "bridge-mac", "bridge-netfilter", "bonding", "fastdp", "fragmentation", "firewall"])
        for c in report {
            XCTAssertEqual(c.status, .ok, "\(c.check): \(c.detail)")
            XCTAssertNil(c.fix)
        }
    }

    func testMTUShowsTheArithmeticAndFailsWhenSleeveDoesNotFit() {
        let ok = check("mtu", healthy())
        XCTAssertEqual(ok.status, .ok)
        XCTAssertTrue(ok.detail.contains("underlay eth0 MTU 1500"), ok.detail)
        XCTAssertTrue(ok.detail.contains("sleeve needs overlay 1420 + 80 = 1500 <= 1500: ok"), ok.detail)
        XCTAssertTrue(ok.detail.contains("fastdp needs overlay 1420 + 50 = 1470 <= 1500: ok"), ok.detail)
        XCTAssertTrue(ok.detail.contains("path MTU 1420"), ok.detail)

        var facts = healthy(underlayMTU: 1454, overlayMTU: 1420)
        facts.connections = [connection(mtu: 1374)]
        let bad = check("mtu", facts)
        XCTAssertEqual(bad.status, .fail)
        XCTAssertTrue(bad.detail.contains("underlay eth0 MTU 1454"), bad.detail)
        XCTAssertTrue(bad.detail.contains("sleeve needs overlay 1420 + 80 = 1500 > 1454: fail"), bad.detail)
        XCTAssertTrue(bad.detail.contains("fastdp needs overlay 1420 + 50 = 1470 > 1454: fail"), bad.detail)
        XCTAssertTrue(bad.detail.contains("path MTU 1374 < overlay 1420"), bad.detail)
        XCTAssertTrue(bad.fix!.contains("--mtu 1374"), bad.fix!)
    }

    func testMTUWarnsWhenAConnectionMeasuredLess() {
        var facts = healthy()
        facts.connections = [connection(mtu: 1380)]
        let c = check("mtu", facts)
        XCTAssertEqual(c.status, .warn)
        XCTAssertTrue(c.detail.contains("02:aa:bb:cc:dd:02 (b): path MTU 1380 < overlay 1420"), c.detail)
    }

    func testMTUWarnsForARelayedPeerWhoseRouteCarriesLess() {
        var facts = healthy()
        func peer(_ n: Int, nextHop: Int?, pathMtu: Int?) -> PeerStatus {
            PeerStatus(name: "02:aa:bb:cc:dd:0\(n)", nickname: "h\(n)", uid: "1", shortId: n, version: 1, connections: 1, reachable: true,
                       nextHop: nextHop.map { "02:aa:bb:cc:dd:0\($0)" }, isSelf: nextHop == nil, pathMtu: pathMtu)
        }
        // Host 3's view of the issue's line: 2 directly (1420), 1 through 2 (1320).
        facts.peers = [peer(3, nextHop: nil, pathMtu: nil), peer(2, nextHop: 2, pathMtu: 1420), peer(1, nextHop: 2, pathMtu: 1320)]
        let c = check("mtu", facts)
        XCTAssertEqual(c.status, .warn)
        XCTAssertTrue(c.detail.contains("peer 02:aa:bb:cc:dd:01 (h1) through 02:aa:bb:cc:dd:02 (h2): path MTU 1320 < overlay 1420"), c.detail)
        XCTAssertFalse(c.detail.contains("peer 02:aa:bb:cc:dd:02"), "a direct peer is the connection's line: \(c.detail)")
        XCTAssertTrue(c.fix!.contains("--mtu 1320"), c.fix!)
        // A route that carries the overlay MTU is fine.
        facts.peers[2].pathMtu = 1420
        XCTAssertEqual(check("mtu", facts).status, .ok)
    }

    /// IPv6 links cost 20 bytes more: an overlay sized for IPv4 does not fit them; a dual-stack
    /// host whose links are all IPv4 is judged by IPv4; without links, by the host's addresses.
    func testMTUCountsTheIPv6HeaderOfIPv6Links() {
        var facts = healthy()
        facts.interfaces[1].addresses.append("fd00::1/64")
        facts.connections = [connection(mtu: 1400)]
        facts.connections[0].underlay = "ipv6"
        let bad = check("mtu", facts)
        XCTAssertEqual(bad.status, .fail)
        XCTAssertTrue(bad.detail.contains("IPv6 underlay: 40-byte outer header"), bad.detail)
        XCTAssertTrue(bad.detail.contains("sleeve needs overlay 1420 + 100 = 1520 > 1500: fail"), bad.detail)
        XCTAssertTrue(bad.fix!.contains("--mtu 1400"), bad.fix!)
        facts.connections[0].underlay = "ipv4"
        facts.connections[0].mtu = 1420
        XCTAssertEqual(check("mtu", facts).status, .ok, "a dual-stack host whose links are IPv4")
        facts.router = nil
        facts.connections = []
        facts.interfaces.removeAll { $0.name.hasPrefix("weft") }
        XCTAssertTrue(check("mtu", facts).detail.contains("1500 - 100 = 1400"), check("mtu", facts).detail)
    }

    func testMTUWithoutRouterOrBridgeSaysWhatARouterWouldChoose() {
        var facts = healthy(underlayMTU: 9000)
        facts.router = nil
        facts.connections = []
        facts.interfaces.removeAll { $0.name.hasPrefix("weft") }
        let c = check("mtu", facts)
        XCTAssertEqual(c.status, .ok)
        XCTAssertTrue(c.detail.contains("9000 - 80 = 8920"), c.detail)
    }

    func testMTUUnderlayIgnoresDownLoopbackWeftAndLinkLocalOnlyLinks() {
        var facts = healthy()
        facts.interfaces += [
            .init(name: "eth1", mtu: 1200, isUp: false, addresses: ["10.0.0.1/24"]),
            .init(name: "eth2", mtu: 1300, addresses: ["169.254.1.1/16"]),
            .init(name: "weftv1234abcd", kind: "veth", mtu: 1000, master: "weft", addresses: ["10.1.0.1/24"]),
        ]
        XCTAssertTrue(check("mtu", facts).detail.hasPrefix("underlay eth0 MTU 1500"))
    }

    func testOffloadWarnsOnOldKernelsWithVirtioUFO() {
        XCTAssertEqual(check("offload", healthy()).status, .ok)
        var facts = healthy()
        facts.kernelRelease = "3.10.0-123.el7.x86_64"
        facts.interfaces[1].udpFragmentationOffload = true
        let c = check("offload", facts)
        XCTAssertEqual(c.status, .warn)
        XCTAssertTrue(c.detail.contains("eth0 (virtio_net, ufo on)"), c.detail)
        XCTAssertEqual(c.fix?.hasPrefix("ethtool -K eth0 ufo off"), true)
        facts.interfaces[1].udpFragmentationOffload = false
        XCTAssertEqual(check("offload", facts).status, .ok)
    }

    func testKernelReleasesWithTheUFOBug() {
        XCTAssertTrue(Doctor.kernelHasUFOBug("3.12.0"))
        XCTAssertTrue(Doctor.kernelHasUFOBug("3.10.0-123.el7.x86_64"))
        XCTAssertTrue(Doctor.kernelHasUFOBug("2.6.32-431.el6.x86_64"))
        XCTAssertFalse(Doctor.kernelHasUFOBug("3.10.0-229.el7.x86_64"))
        XCTAssertFalse(Doctor.kernelHasUFOBug("3.10.0-1160.el7.x86_64"))
        XCTAssertFalse(Doctor.kernelHasUFOBug("3.13.0-24-generic"))
        XCTAssertFalse(Doctor.kernelHasUFOBug("6.18.44-fc-v669"))
    }

    func testBridgeMACFailsForTheWeftBridgeAndWarnsForAnInheritingUnderlayBridge() {
        let ok = check("bridge-mac", healthy())
        XCTAssertEqual(ok.status, .ok)
        XCTAssertTrue(ok.detail.contains("equal to the peer name"), ok.detail)

        var wrong = healthy()
        wrong.interfaces[2].addrAssignType = 1
        wrong.interfaces[2].mac = [0x52, 0x54, 0, 0, 0, 9]
        let bad = check("bridge-mac", wrong)
        XCTAssertEqual(bad.status, .fail)
        XCTAssertTrue(bad.detail.contains("addr_assign_type 1"), bad.detail)
        XCTAssertTrue(bad.detail.contains("is not the peer name \(Self.peerName)"), bad.detail)

        var inherited = healthy()
        inherited.interfaces[1].addresses = []
        inherited.interfaces[1].master = "br0"
        inherited.interfaces.append(.init(name: "br0", kind: "bridge", mac: [0x52, 0x54, 0, 0, 0, 1], addrAssignType: 1, addresses: ["198.18.0.1/24"]))
        let warn = check("bridge-mac", inherited)
        XCTAssertEqual(warn.status, .warn)
        XCTAssertTrue(warn.detail.contains("bridge br0 inherits its MAC 52:54:00:00:00:01"), warn.detail)
        XCTAssertEqual(warn.fix, "ip link set br0 address 52:54:00:00:00:01 (set it explicitly, also in the distribution's network configuration)")
        inherited.interfaces[inherited.interfaces.count - 1].addrAssignType = 3
        XCTAssertEqual(check("bridge-mac", inherited).status, .ok)
    }

    func testBridgeNetfilterWarnsOnlyWhileTheWeftBridgeExists() {
        XCTAssertEqual(check("bridge-netfilter", healthy()).status, .ok)
        var facts = healthy()
        facts.bridgeNetfilter = nil
        XCTAssertEqual(check("bridge-netfilter", facts).status, .ok)
        facts.bridgeNetfilter = ["bridge-nf-call-iptables": 1, "bridge-nf-call-ip6tables": 0, "bridge-nf-call-arptables": 1]
        let c = check("bridge-netfilter", facts)
        XCTAssertEqual(c.status, .warn)
        XCTAssertTrue(c.detail.contains("host iptables/ip6tables/arptables rules now apply"), c.detail)
        XCTAssertTrue(c.fix!.contains("sysctl -w net.bridge.bridge-nf-call-iptables=0"))
        XCTAssertFalse(c.fix!.contains("ip6tables=0"))
        facts.interfaces.removeAll { $0.name == "weft" }
        XCTAssertEqual(check("bridge-netfilter", facts).status, .ok)
    }

    func testBondingWarnsForBalanceRRUnderABridge() {
        XCTAssertEqual(check("bonding", healthy()).detail, "no bond on the underlay path")
        var facts = healthy()
        facts.interfaces[1].addresses = []
        facts.interfaces += [
            .init(name: "bond0", kind: "bond", bondMode: "balance-rr"),
            .init(name: "bond0.10", kind: "vlan", master: "br0", lowers: ["bond0"]),
            .init(name: "br0", kind: "bridge", addrAssignType: 3, addresses: ["198.18.0.1/24"]),
        ]
        let c = check("bonding", facts)
        XCTAssertEqual(c.status, .warn)
        XCTAssertTrue(c.detail.contains("bond0.10 on bond0 is a balance-rr bond under bridge br0"), c.detail)
        XCTAssertTrue(c.fix!.contains("balance-tlb or 802.3ad"))
        facts.interfaces[facts.interfaces.count - 3].bondMode = "802.3ad"
        XCTAssertEqual(check("bonding", facts).status, .ok)

        var plain = healthy()
        plain.interfaces += [.init(name: "bond1", kind: "bond", addresses: ["10.9.0.1/24"], bondMode: "balance-rr")]
        let unbridged = check("bonding", plain)
        XCTAssertEqual(unbridged.status, .ok)
        XCTAssertTrue(unbridged.detail.contains("no bridge above it"), unbridged.detail)
    }

    func testFastdpWarnsForATrustedConnectionOnSleeveAndATakenVXLANPort() {
        let ok = check("fastdp", healthy())
        XCTAssertEqual(ok.status, .ok)
        XCTAssertTrue(ok.detail.contains("openvswitch module not present"), ok.detail)
        var facts = healthy()
        facts.connections = [connection(mtu: 1420, mode: "sleeve", encrypted: false)]
        let trusted = check("fastdp", facts)
        XCTAssertEqual(trusted.status, .warn)
        XCTAssertTrue(trusted.detail.contains("sleeve, preferred fastdp: openvswitch module not present"), trusted.detail)

        var taken = healthy()
        taken.udpPortsBound.insert(6784)
        taken.interfaces.append(.init(name: "vxlan0", kind: "vxlan"))
        let port = check("fastdp", taken)
        XCTAssertEqual(port.status, .warn)
        XCTAssertTrue(port.detail.contains("UDP 6784 (fastdp VXLAN) is already bound"), port.detail)
        XCTAssertTrue(port.detail.contains("vxlan0"), port.detail)
    }

    func testFragmentationWarnsWhenCountersGrow() {
        let ok = check("fragmentation", healthy())
        XCTAssertEqual(ok.detail, "over 3 s: FragFails +0, ReasmFails +0, FragCreates +0")
        var facts = healthy()
        facts.ipCounters?.after["FragCreates"] = 52
        let c = check("fragmentation", facts)
        XCTAssertEqual(c.status, .warn)
        XCTAssertTrue(c.detail.contains("FragCreates +42"), c.detail)
    }

    func testFirewallWarnsOnRulesThatDropWeftPorts() {
        XCTAssertEqual(check("firewall", healthy()).status, .ok)
        let blocking = [
            "udp dport 6784 drop",
            "tcp dport 6783 counter packets 0 bytes 0 reject",
            "udp dport { 53, 6783 } drop",
            "meta l4proto udp th dport 6700-6800 drop",
            "-A INPUT -p udp -m udp --dport 6784 -j DROP",
            "-A INPUT -p tcp -m multiport --dports 22,6783 -j REJECT --reject-with icmp-port-unreachable",
            "-A FORWARD -p udp -m udp --dport 6000:7000 -j DROP",
        ]
        for rule in blocking {
            var facts = healthy()
            facts.firewall = [.init(tool: "nft", lines: ["table inet filter {", rule, "}"])]
            let c = check("firewall", facts)
            XCTAssertEqual(c.status, .warn, rule)
            XCTAssertTrue(c.detail.contains(rule), c.detail)
        }
        let harmless = [
            "tcp dport 6784 drop",  // fastdp is UDP only
            "udp dport 6783 accept",
            "udp dport 53 drop",
            "-A INPUT -p udp -m udp --dport 6784 -j ACCEPT",
            "ct state invalid drop",
            "type filter hook input priority filter; policy drop;",
        ]
        for rule in harmless {
            var facts = healthy()
            facts.firewall = [.init(tool: "iptables", lines: [rule])]
            XCTAssertEqual(check("firewall", facts).status, .ok, rule)
        }
        var facts = healthy()
        facts.firewall = nil
        XCTAssertTrue(check("firewall", facts).detail.hasPrefix("not checked"))
        facts.firewallUnreadable = ["nft"]
        XCTAssertTrue(check("firewall", facts).detail.hasPrefix("not checked: nft could not list the rules"))
    }

    func testTextReportPutsTheFixOnTheNextLine() {
        var facts = healthy(underlayMTU: 1454)
        facts.connections = []
        let text = Doctor.text(Doctor.run(facts))
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 9)
        XCTAssertTrue(lines[0].hasPrefix("fail  mtu               underlay eth0 MTU 1454"), String(lines[0]))
        XCTAssertTrue(lines[1].hasPrefix("      fix: start the router with --mtu 1374"), String(lines[1]))
        XCTAssertTrue(lines[2].hasPrefix("ok    offload           kernel"), String(lines[2]))
    }

    func testJSONFieldsAreCheckStatusDetailFix() throws {
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(Doctor.run(healthy()))) as! [[String: Any]]
        XCTAssertEqual(json.count, 8)
        XCTAssertEqual(Set(json[0].keys), ["check", "status", "detail", "fix"])
        XCTAssertTrue(json[0]["fix"] is NSNull)
    }
}
