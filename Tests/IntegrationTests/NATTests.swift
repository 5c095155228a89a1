// Routers behind NAT (#13 part 3, docs/operations.md "Routers behind NAT"): a masquerading
// gateway with random ports in front of a router that names a public peer. What keeps it working
// is in the data plane: sleeve heartbeats every second from each side keep the NAT's UDP mapping
// open, and a peer takes a neighbour's UDP address from its authenticated packets, so a new
// mapping (flushed, renumbered) is followed by the next heartbeat.
import Foundation
import XCTest
@testable import WeftRouter

final class NATTests: XCTestCase {
    /// The gateway forgets idle UDP mappings after 5 s (unreplied) and 10 s (seen both ways)
    /// instead of Linux's 30/120 s, so a test of a few seconds proves what a real NAT's minutes
    /// would: only traffic the routers send themselves keeps the mapping.
    private func shortenUDPTimeouts(_ net: TestNet, _ index: Int) throws {
        try Shell.run(["ip", "netns", "exec", net.gateway(index), "sysctl", "-q", "-w",
                       "net.netfilter.nf_conntrack_udp_timeout=5", "net.netfilter.nf_conntrack_udp_timeout_stream=10"])
    }

    /// Seconds until a one-packet ping from `ns` to `address` is answered, nil after `timeout`.
    private func secondsUntilPing(_ net: TestNet, from ns: String, _ address: String, timeout: TimeInterval) -> Double? {
        let start = Date()
        return net.waitUntil(timeout: timeout) { try net.ping(from: ns, address, count: 1).status == 0 }
            ? Date().timeIntervalSince(start) : nil
    }

    /// One router behind NAT naming a public one, with a second public router: the mesh forms,
    /// workloads ping both ways, also after the gateway's idle timeouts have passed with no
    /// workload traffic, and again after the gateway loses all its mappings.
    func testRouterBehindNATIsAFullMember() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2, routed: true)
        defer { net.cleanup() }
        try net.addHostBehindNAT()
        try shortenUDPTimeouts(net, 3)
        try net.launch(1)
        try net.launch(2, peers: [1])
        try net.launch(3, peers: [1])
        XCTAssertTrue(net.sleeveReady(3, peers: 2), "\(String(describing: try? net.connections(3)))\n\(net.log(3))")
        XCTAssertTrue(net.sleeveReady(1, peers: 2), "\(String(describing: try? net.connections(1)))")
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        let w3 = try net.attachWorkload(3, "10.47.0.3/24")
        for (from, to) in [(w1, "10.47.0.3"), (w3, "10.47.0.1"), (w2, "10.47.0.3"), (w3, "10.47.0.2")] {
            let ping = try net.ping(from: from, to)
            XCTAssertEqual(ping.status, 0, "\(from) → \(to): \(ping.output)")
        }

        // Idle past the gateway's timeouts: inbound traffic still finds the mapping.
        sleep(15)
        let inbound = try net.ping(from: w1, "10.47.0.3", count: 3)
        XCTAssertTrue(inbound.output.contains(" 0% packet loss"), "after 15 s idle behind the NAT: \(inbound.output)")
        let connectionsBefore = try net.connections(1).filter { $0.state == .established }.compactMap(\.connectionId)

        // The gateway loses every mapping (a reboot, a table flush): the next heartbeat makes a
        // new one, with a new random port, and the peers follow it.
        try Shell.run(["ip", "netns", "exec", net.gateway(3), "conntrack", "-F"], check: false)
        let recovered = secondsUntilPing(net, from: w1, "10.47.0.3", timeout: 20)
        XCTAssertNotNil(recovered, "no answer from behind the NAT 20 s after its mappings were flushed\n\(net.log(1))")
        let mesh = net.waitUntil(timeout: 30) { try net.connection(1, to: 3)?.ready == true && net.connection(3, to: 2)?.ready == true }
        XCTAssertTrue(mesh, "\(String(describing: try? net.connections(3)))")
        let linkBack = try net.connections(1).filter { $0.state == .established }.compactMap(\.connectionId)
        print(String(format: "NAT mappings flushed: workloads ping again after %.1f s; ", recovered ?? -1)
              + "gossip links of host 1 renewed: \(Set(connectionsBefore).subtracting(linkBack).count)")
        XCTAssertEqual(try net.ping(from: w3, "10.47.0.2").status, 0)
    }

    /// Two routers behind different NATs (one NAT hop with MTU 1400) cannot dial each other;
    /// their workloads reach each other through the public router, with the route's MTU of
    /// docs/protocol.md §4.5 (1320) and frag-needed for a DF packet over it.
    func testRoutersBehindTwoNATsMeetThroughAPublicRelay() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1, routed: true)
        defer { net.cleanup() }
        try net.addHostBehindNAT()
        try net.addHostBehindNAT(lanMTU: 1400)
        try net.launch(1)
        try net.launch(2, peers: [1])
        try net.launch(3, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 2), "\(String(describing: try? net.connections(1)))")
        XCTAssertTrue(net.waitUntil(timeout: 20) { try net.pathMTU(2, to: 3) == 1320 && net.pathMTU(3, to: 2) == 1320 },
                      "\(String(describing: try? net.peers(2)))")
        XCTAssertNil(try net.connection(2, to: 3), "two routers behind NAT linked directly")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        let w3 = try net.attachWorkload(3, "10.47.0.3/24")
        XCTAssertEqual(try net.ping(from: w2, "10.47.0.3").status, 0)
        XCTAssertEqual(try net.ping(from: w3, "10.47.0.2").status, 0)
        let big = try net.ping(from: w2, "10.47.0.3", count: 2, extra: ["-M", "do", "-s", "\(1420 - 28)"])
        XCTAssertTrue(big.output.contains("mtu = 1320") || big.output.contains("mtu=1320"), big.output)
        let fits = try net.ping(from: w2, "10.47.0.3", count: 2, extra: ["-M", "do", "-s", "\(1320 - 28)"])
        XCTAssertEqual(fits.status, 0, fits.output)
        let bits = try net.iperf(from: w2, to: w3, address: "10.47.0.3", seconds: 5)
        print(String(format: "behind two NATs through a relay: iperf3 5 s %.0f Mbit/s", bits / 1e6))
        XCTAssertGreaterThan(bits, 0, "no bulk TCP between two routers behind NAT")
    }

    /// The NAT gateway of a router gets a new public address (all mappings go with the old one):
    /// the public peer learns the new UDP address from authenticated packets and the gossip link
    /// is dialed again from behind the NAT.
    func testRenumberedNATKeepsTheRouterInTheMesh() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1, routed: true)
        defer { net.cleanup() }
        try net.addHostBehindNAT()
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1), "\(String(describing: try? net.connections(1)))")
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertEqual(try net.ping(from: w1, "10.47.0.2").status, 0)
        let before = try XCTUnwrap(try net.connection(1, to: 2))

        let address = try net.renumberGateway(2)
        let start = Date()
        let dataPlane = secondsUntilPing(net, from: w1, "10.47.0.2", timeout: 30)
        XCTAssertNotNil(dataPlane, "host 2's workload unreachable 30 s after its NAT was renumbered\n\(net.log(1))")
        // Sooner than host 1's idle timeout (20 s): the redial from behind the NAT replaces the
        // link host 1 still holds (docs/protocol.md §3.9) instead of waiting for it to time out.
        XCTAssertLessThan(dataPlane ?? 99, 15, "recovery waited for the idle timeout of the dead link")
        let relinked = net.waitUntil(timeout: 40) {
            guard let c = try net.connection(1, to: 2) else { return false }
            return c.ready && c.connectionId != before.connectionId
        }
        let gossip = Date().timeIntervalSince(start)
        XCTAssertTrue(relinked, "\(String(describing: try? net.connections(1)))\n\(net.log(2))")
        XCTAssertEqual(try net.ping(from: w2, "10.47.0.1").status, 0)
        print(String(format: "NAT renumbered to %@: workloads ping again after %.1f s, gossip link back after %.1f s",
                     address, dataPlane ?? -1, gossip))
    }
}
