// IPv6 underlays (docs/protocol.md §5.6, docs/operations.md "IPv6 underlays"): a mesh whose
// hosts have only fd00::/64 addresses, a mesh of a v4-only, a v6-only and a dual-stack host,
// and trust decided by an IPv6 CIDR. Sleeve natively; fastdp over IPv6 is FastdpTests' (OVS VM).
import Foundation
import XCTest
@testable import WeftRouter

final class IPv6UnderlayTests: XCTestCase {
    /// Three routers on an IPv6-only underlay: 2 names 1 by a host name that resolves to fd00::1
    /// only (AAAA), 3 starts alone and is told `weft connect [fd00::1]:6783`. A full mesh over
    /// IPv6 (status says `underlay` ipv6 and the 40-byte header in every MTU), workloads
    /// ping each other, a DF ping at the overlay MTU passes, a marker never shows on the
    /// encrypted underlay, and bulk TCP moves. Prints IPv6 against IPv4 sleeve throughput of
    /// the same build in the same run.
    func testIPv6OnlyUnderlayMeshCarriesEncryptedTraffic() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3, stack: .ipv6)
        defer { net.cleanup() }
        let seed = "seed-\(net.prefix)"
        try net.addHostsEntry(2, name: seed, address: "fd00::1")
        try net.launch(1)
        try net.launch(2, peerAddresses: [seed])
        try net.launch(3)
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.cli(3, ["connect", "[fd00::1]:6783"]).status == 0 })
        for index in 1...3 { XCTAssertTrue(net.sleeveReady(index, peers: 2), "\(String(describing: try? net.connections(index)))") }
        XCTAssertEqual(try net.status(1).overlayMTU, 1400, "1500 − 100 (IPv6 sleeve overhead)")
        for c in try net.connections(2) where c.state == .established {
            XCTAssertEqual(c.underlay, "ipv6", "\(c)")
            XCTAssertTrue(c.address.hasPrefix("[fd00::"), c.address)
            XCTAssertEqual(c.mtu, 1400, "\(c)")
            XCTAssertTrue(c.encrypted)
        }
        // 2 knew 1 only by the name, and 1 and 3 learn of 2 only from 2: its link to 1 came from the AAAA name.
        XCTAssertNotNil(try net.connection(2, to: 1), "2 reached 1 by a name that resolves to fd00::1")
        let forget = try net.cli(3, ["forget", "[fd00::1]:6783"])
        XCTAssertEqual(forget.status, 0, forget.output)
        let ss = try Shell.run(["ip", "netns", "exec", net.host(1).namespace, "ss", "-lnu"]).output
        XCTAssertTrue(ss.contains("[::]:6783") || ss.contains("*:6783"), "sleeve listens on both families: \(ss)")

        let w = try (1...3).map { try net.attachWorkload($0, "10.47.0.\($0)/24") }
        for (from, to) in [(0, 1), (0, 2), (1, 2), (2, 0)] {
            XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w[from], "10.47.0.\(to + 1)", count: 1).status == 0 },
                          "workload \(from + 1) cannot reach \(to + 1)")
        }
        let fits = try net.ping(from: w[0], "10.47.0.3", count: 2, extra: ["-M", "do", "-s", "\(1400 - 28)"])
        XCTAssertEqual(fits.status, 0, "a DF ping at the overlay MTU: \(fits.output)")

        let marker = try SleeveTests.sendMarker(net, from: w[0], to: w[2], address: "10.47.0.3")
        XCTAssertTrue(marker.delivered, "the text did not arrive")
        XCTAssertFalse(marker.seenOnUnderlay, "the text crossed the IPv6 underlay in clear")

        let v6 = try net.iperf(from: w[0], to: w[2], address: "10.47.0.3", seconds: 5)
        XCTAssertGreaterThan(v6, 10e6, "bulk TCP over the IPv6 underlay barely moved")
        // The same over IPv4, same build, same run.
        let v4net = try TestNet(hosts: 2)
        defer { v4net.cleanup() }
        try v4net.launch(1)
        try v4net.launch(2, peers: [1])
        XCTAssertTrue(v4net.sleeveReady(1, peers: 1))
        let a = try v4net.attachWorkload(1, "10.47.0.1/24"), b = try v4net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(v4net.waitUntil(timeout: 10) { try v4net.ping(from: a, "10.47.0.2", count: 1).status == 0 })
        let v4 = try v4net.iperf(from: a, to: b, address: "10.47.0.2", seconds: 5)
        print(String(format: "sleeve bulk TCP, 5 s each, same run: IPv6 underlay %.2f Gbit/s, IPv4 underlay %.2f Gbit/s (%.2f×)",
                     v6 / 1e9, v4 / 1e9, v6 / max(v4, 1)))
    }

    /// A v4-only host (1), a dual-stack host (2) and a v6-only host (3): 1 names 2 by IPv4, 3
    /// names it by IPv6; 1 and 3 share no family, so 2 relays between them, and the route MTU
    /// counts 2–3's IPv6 header (1400) below 1's own 1420.
    func testV4OnlyAndV6OnlyHostsMeetThroughADualStackOne() throws {
        try requireRoot()
        let net = try TestNet(hosts: 0)
        defer { net.cleanup() }
        try net.addHost(stack: .ipv4)
        try net.addHost(stack: .dual)
        try net.addHost(stack: .ipv6)
        try net.launch(2)
        try net.launch(1, peers: [2])
        try net.launch(3, peerAddresses: ["[\(try XCTUnwrap(net.host(2).address6))]:6783"])
        XCTAssertTrue(net.sleeveReady(2, peers: 2), "\(String(describing: try? net.connections(2)))")
        let families = Dictionary(try net.connections(2).filter { $0.state == .established }.map { ($0.nickname ?? "", $0.underlay ?? "") }) { a, _ in a }
        XCTAssertEqual(families[net.nickname(1)], "ipv4")
        XCTAssertEqual(families[net.nickname(3)], "ipv6")
        XCTAssertEqual(try net.status(1).overlayMTU, 1420)
        XCTAssertEqual(try net.status(2).overlayMTU, 1400, "a dual-stack host makes room for the IPv6 header")
        XCTAssertEqual(try net.status(3).overlayMTU, 1400)
        let relay = try XCTUnwrap(try net.peers(2).first { $0.isSelf }?.name)
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.peers(1).first { $0.nickname == net.nickname(3) }?.nextHop == relay },
                      "1 reaches 3 through 2: \(String(describing: try? net.peers(1)))")
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.pathMTU(1, to: 3) == 1400 }, "\(String(describing: try? net.peers(1)))")

        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w3 = try net.attachWorkload(3, "10.47.0.3/24")
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.ping(from: w1, "10.47.0.3", count: 1).status == 0 })
        XCTAssertEqual(try net.ping(from: w3, "10.47.0.1", count: 3).status, 0)
        // 1's workload sends at its own MTU (1420): host 1's router answers with the route's 1400.
        let big = try net.ping(from: w1, "10.47.0.3", count: 2, extra: ["-M", "do", "-s", "\(1420 - 28)"])
        XCTAssertTrue(big.output.contains("mtu = 1400") || big.output.contains("mtu=1400"), big.output)
        let fits = try net.ping(from: w1, "10.47.0.3", count: 2, extra: ["-M", "do", "-s", "\(1400 - 28)"])
        XCTAssertEqual(fits.status, 0, fits.output)
        XCTAssertGreaterThan(try net.iperf(from: w1, to: w3, address: "10.47.0.3", seconds: 3), 10e6, "bulk TCP 1 → 3 through the relay")
    }

    /// `--trusted-subnets fd00::/64` on both ends: the IPv6 link is trusted and, with no fast
    /// datapath here, carries its frames in clear over sleeve.
    func testIPv6TrustedSubnetDecidesTrust() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2, stack: .ipv6)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--trusted-subnets", "fd00::/64"])
        try net.launch(2, peers: [1], extraArgs: ["--trusted-subnets", "fd00::/64"])
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        let c = try XCTUnwrap(try net.connections(1).first { $0.state == .established })
        XCTAssertTrue(c.trusted, "\(c)")
        XCTAssertFalse(c.encrypted)
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        let marker = try SleeveTests.sendMarker(net, from: w1, to: w2, address: "10.47.0.2")
        XCTAssertTrue(marker.delivered)
        XCTAssertTrue(marker.seenOnUnderlay, "a trusted IPv6 link carries frames in clear")
    }

    /// IPv6's minimum MTU on one host (1280): its overlay MTU is 1180; the other host's probes
    /// (DF, 48 bytes of IPv6 + UDP headers counted) find the 1280 path, a DF ping above it is
    /// answered with the 1180 it carries, and bulk TCP completes.
    func testIPv6PathMTUProbesFindA1280Hop() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1, stack: .ipv6)
        defer { net.cleanup() }
        try net.addHost(mtu: 1280, stack: .ipv6)
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        XCTAssertEqual(try net.status(2).overlayMTU, 1180)
        try net.assertSmallHopFound(overlayMTU: 1180, pingAbove: 1400, bytes: "20M")
    }

    /// A host whose IPv6 is switched off by sysctl (as the bench's namespaces are): the router
    /// still launches (gossip and sleeve on IPv4 alone) and carries traffic.
    func testRouterLaunchesWhereIPv6IsSwitchedOff() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        for i in 1...2 { try Shell.run(["ip", "netns", "exec", net.host(i).namespace, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]) }
        try net.launchStar(2)
        XCTAssertTrue(net.sleeveReady(1, peers: 1), net.log(1))
        _ = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.ping(from: w2, "10.47.0.1", count: 1).status == 0 })
    }
}
