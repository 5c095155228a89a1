// The sleeve data plane end to end: workloads in namespaces on different hosts, real routers,
// traffic and captures on the underlay.
import Foundation
import WeftMesh
import XCTest
@testable import WeftRouter

extension TestNet {
    /// A workload namespace attached to host `index` with `cidr`; IPv6 off so that counters stay
    /// still when the test wants them still.
    func attachWorkload(_ index: Int, _ cidr: String) throws -> String {
        let ns = try addWorkload()
        try Shell.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        let result = try cli(index, ["attach", ns, cidr])
        guard result.status == 0 else { throw ShellError(description: "attach failed: \(result.output)") }
        return ns
    }

    func ping(from ns: String, _ address: String, count: Int = 3, extra: [String] = []) throws -> (status: Int32, output: String) {
        try Shell.run(["ip", "netns", "exec", ns, "ping", "-c", "\(count)", "-i", "0.2", "-W", "2"] + extra + [address], check: false)
    }

    /// Waits until the sleeve connection from `index` to every other router answers heartbeats.
    func sleeveReady(_ index: Int, peers: Int) -> Bool {
        waitUntil(timeout: 15) {
            let ready = try connections(index).filter { $0.state == .established && $0.mode == "sleeve" && $0.ready }
            return ready.count == peers
        }
    }

    func counters(_ index: Int, peerAddressPrefix: String? = nil) throws -> SleeveCountersView {
        let c = try connections(index).first { $0.state == .established && $0.counters != nil }
        let s = c?.counters
        return SleeveCountersView(dropReplay: s?.dropReplay ?? 0, dropBadTag: s?.dropBadTag ?? 0, rxFrames: s?.rxFrames ?? 0)
    }
}

struct SleeveCountersView { var dropReplay, dropBadTag, rxFrames: UInt64 }

/// UDP datagrams over IPv4 or IPv6 (no extension headers) in a pcap file (Ethernet link type),
/// as (source, destination, payload); IPv6 endpoints as `[addr]:port`.
func udpDatagrams(inPcap path: String) throws -> [(src: String, dst: String, payload: [UInt8])] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var out: [(String, String, [UInt8])] = []
    var offset = 24
    func le32(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24 }
    func port(_ o: Int) -> Int { Int(bytes[o]) << 8 | Int(bytes[o + 1]) }
    func v6(_ o: Int) -> String {
        let groups = stride(from: o, to: o + 16, by: 2).map { String(Int(bytes[$0]) << 8 | Int(bytes[$0 + 1]), radix: 16) }
        return IPAddress(groups.joined(separator: ":"))?.description ?? groups.joined(separator: ":")
    }
    while offset + 16 <= bytes.count {
        let length = le32(offset + 8)
        let frame = offset + 16
        offset = frame + length
        guard offset <= bytes.count, length >= 42 else { continue }
        let ip = frame + 14
        let src: String, dst: String, udp: Int
        switch (bytes[frame + 12], bytes[frame + 13]) {
        case (0x08, 0x00):
            let ihl = Int(bytes[ip] & 0x0F) * 4
            guard bytes[ip + 9] == 17 else { continue }
            udp = ip + ihl
            src = "\(bytes[ip + 12]).\(bytes[ip + 13]).\(bytes[ip + 14]).\(bytes[ip + 15]):\(port(udp))"
            dst = "\(bytes[ip + 16]).\(bytes[ip + 17]).\(bytes[ip + 18]).\(bytes[ip + 19]):\(port(udp + 2))"
        case (0x86, 0xDD):
            guard length >= 14 + 40 + 8, bytes[ip + 6] == 17 else { continue }
            udp = ip + 40
            src = "[\(v6(ip + 8))]:\(port(udp))"
            dst = "[\(v6(ip + 24))]:\(port(udp + 2))"
        default:
            continue
        }
        let udpLength = Int(bytes[udp + 4]) << 8 | Int(bytes[udp + 5])
        guard udpLength >= 8, udp + udpLength <= offset else { continue }
        out.append((src, dst, Array(bytes[(udp + 8)..<(udp + udpLength)])))
    }
    return out
}

final class SleeveTests: XCTestCase {
    /// Sends a known text from w1 to w2 with netcat while the underlay is captured; returns
    /// (whether w2 got it, whether the capture contains it).
    static func sendMarker(_ net: TestNet, from w1: String, to w2: String, address: String) throws -> (delivered: Bool, seenOnUnderlay: Bool) {
        let marker = "WEFT-PLAINTEXT-MARKER-\(net.prefix)"
        let capture = try net.startCapture("marker", namespace: net.switchNamespace, interface: "br0", filter: "udp")
        let received = "\(net.directory)/received.txt"
        let server = try net.startBackground(namespace: w2, ["nc", "-l", "-p", "5001"], output: received)
        usleep(700_000)
        try Shell.run(["ip", "netns", "exec", w1, "sh", "-c", "for i in 1 2 3 4 5; do echo \(marker); done | nc -q 1 -w 3 \(address) 5001"])
        _ = net.waitUntil(timeout: 3) { !server.isRunning }
        net.stopCapture(capture)
        net.stopBackground(server)
        let delivered = ((try? String(contentsOfFile: received, encoding: .utf8)) ?? "").contains(marker)
        return (delivered, capture.bytes().range(of: Data(marker.utf8)) != nil)
    }

    func testEncryptedSleevePingIperfAndNoPlaintextOnTheUnderlay() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1), "\(String(describing: try? net.connections(1)))")
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        let ping = try net.ping(from: w1, "10.47.0.2", count: 5)
        XCTAssertEqual(ping.status, 0, ping.output)
        let c = try XCTUnwrap(try net.connections(1).first { $0.state == .established })
        XCTAssertEqual(c.mode, "sleeve")
        XCTAssertTrue(c.encrypted)
        XCTAssertNotNil(c.cipher)
        XCTAssertEqual(c.mtu, 1420)
        XCTAssertEqual(c.keyEpoch, 0)

        let server = try net.startBackground(namespace: w2, ["iperf3", "-s", "-1", "-B", "10.47.0.2"], output: "\(net.directory)/iperf-server.log")
        usleep(500_000)
        let client = try Shell.run(["ip", "netns", "exec", w1, "iperf3", "-c", "10.47.0.2", "-t", "10", "-J"])
        net.stopBackground(server)
        let json = try JSONSerialization.jsonObject(with: Data(client.output.utf8)) as? [String: Any]
        let received = ((json?["end"] as? [String: Any])?["sum_received"] as? [String: Any])?["bits_per_second"] as? Double ?? 0
        print(String(format: "iperf3 10 s through encrypted sleeve (debug build): %.0f Mbit/s", received / 1e6))
        XCTAssertGreaterThan(received, 10e6, "the transfer barely moved")

        let marker = try Self.sendMarker(net, from: w1, to: w2, address: "10.47.0.2")
        XCTAssertTrue(marker.delivered, "the text did not arrive")
        XCTAssertFalse(marker.seenOnUnderlay, "the text crossed the underlay in clear on an encrypted link")
        let after = try XCTUnwrap(try net.connections(1).first { $0.state == .established }?.counters)
        XCTAssertGreaterThan(after.txFrames, 1000)
        XCTAssertEqual(after.dropBadTag, 0)
    }

    func testTrustedLinkCarriesFramesInClear() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--trusted-subnets", "198.18.0.0/24"])
        try net.launch(2, peers: [1], extraArgs: ["--trusted-subnets", "198.18.0.0/24"])
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        let c = try XCTUnwrap(try net.connections(1).first { $0.state == .established })
        XCTAssertTrue(c.trusted)
        XCTAssertFalse(c.encrypted)
        XCTAssertNil(c.cipher)
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        let marker = try Self.sendMarker(net, from: w1, to: w2, address: "10.47.0.2")
        XCTAssertTrue(marker.delivered)
        XCTAssertTrue(marker.seenOnUnderlay, "a trusted link is expected to carry frames in clear")
    }

    /// Small frames that arrive together share packets ("several frames per packet"), and a
    /// TCP transfer travels as super-frames in pieces (more packets than frames).
    func testSmallFramesShareSealedPackets() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launchStar(2)
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        let before = try XCTUnwrap(try net.connections(1).first { $0.state == .established }?.counters)
        let server = try net.startBackground(namespace: w2, ["iperf3", "-s", "-1", "-B", "10.47.0.2"], output: "\(net.directory)/iperf-server.log")
        usleep(500_000)
        _ = try Shell.run(["ip", "netns", "exec", w1, "iperf3", "-c", "10.47.0.2", "-u", "-l", "64", "-b", "300M", "-t", "2"], check: false)
        net.stopBackground(server)
        let after = try XCTUnwrap(try net.connections(1).first { $0.state == .established }?.counters)
        let frames = after.txFrames - before.txFrames
        let packets = after.txPackets - before.txPackets
        print("small frames: \(frames) frames in \(packets) packets")
        XCTAssertGreaterThan(frames, 10_000)
        XCTAssertLessThan(Double(packets), Double(frames) * 0.9, "frames that arrive together should share packets")
        XCTAssertEqual(after.dropBadTag, 0)
    }

    /// Three hosts in a full encrypted mesh: every workload reaches every other. Broadcasts
    /// (ARP) leave each router towards two neighbours at once, each copy sealed separately.
    func testFullMeshEveryWorkloadReachesEveryOther() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launchStar(3)
        for index in 1...3 { XCTAssertTrue(net.sleeveReady(index, peers: 2), "host \(index)") }
        let workloads = try (1...3).map { try net.attachWorkload($0, "10.47.0.\($0)/24") }
        for (i, ns) in workloads.enumerated() {
            for j in 1...3 where j != i + 1 {
                XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: ns, "10.47.0.\(j)", count: 1).status == 0 },
                              "w\(i + 1) cannot reach 10.47.0.\(j)")
            }
        }
        for index in 1...3 {
            for c in try net.connections(index) where c.state == .established {
                XCTAssertEqual(c.counters?.dropBadTag, 0)
                XCTAssertEqual(c.counters?.dropMalformed, 0, "host \(index): a garbled frame arrived")
            }
        }
    }

    /// A and C cannot reach each other's underlay address; their workloads talk through B.
    func testWorkloadsReachEachOtherThroughARelay() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launchLine()
        XCTAssertTrue(net.sleeveReady(2, peers: 2))
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        _ = try net.attachWorkload(3, "10.47.0.3/24")
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.ping(from: w1, "10.47.0.3", count: 1).status == 0 },
                      "no path A→C through B: \(String(describing: try? net.connections(1)))")
        let ping = try net.ping(from: w1, "10.47.0.3", count: 5)
        XCTAssertEqual(ping.status, 0, ping.output)
        let peers = try JSONDecoder().decode([PeerStatus].self, from: Data(
            try ControlClient(socketPath: net.host(1).socket).request(method: "GET", path: "/v1/status/peers").body))
        let c = try XCTUnwrap(peers.first { $0.nickname == net.nickname(3) })
        let b = try XCTUnwrap(peers.first { $0.nickname == net.nickname(2) })
        XCTAssertEqual(c.nextHop, b.name, "A reaches C through B")
    }

    /// A captured sealed packet sent again is dropped as a replay; with one bit flipped it is
    /// dropped for its tag; the workload sees neither.
    func testReplayedAndTamperedPacketsAreDroppedAndCounted() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        _ = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        let capture = try net.startCapture("sleeve", namespace: net.switchNamespace, interface: "br0", filter: "udp port 6783")
        XCTAssertEqual(try net.ping(from: w1, "10.47.0.2", count: 3).status, 0)
        net.stopCapture(capture)
        // A sealed DATA packet from host 2 to host 1 (an echo reply on its way to w1).
        let packet = try XCTUnwrap(try capture.datagrams().first {
            $0.src == "198.18.0.2:6783" && $0.dst == "198.18.0.1:6783" && $0.payload.first == 0x81
        }?.payload, "no sealed data packet captured")
        sleep(1)
        let before = try net.counters(1)
        // Whatever reaches w1 while nothing legitimate is sent to it: must stay empty.
        let watcher = try net.startCapture("w1", namespace: w1, interface: "ethwe", filter: "icmp")
        let inject = "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(bytes.fromhex(sys.argv[1]), ('198.18.0.1', 6783))"
        let hex = packet.map { String(format: "%02x", $0) }.joined()
        try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "python3", "-c", inject, hex])
        XCTAssertTrue(net.waitUntil(timeout: 3) { try net.counters(1).dropReplay > before.dropReplay }, "replay not counted")
        var flipped = packet
        flipped[flipped.count / 2] ^= 0x01
        try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "python3", "-c", inject,
                       flipped.map { String(format: "%02x", $0) }.joined()])
        XCTAssertTrue(net.waitUntil(timeout: 3) { try net.counters(1).dropBadTag > before.dropBadTag }, "bad tag not counted")
        // A bit flipped in the counter makes it fresh: the tag still fails.
        var recounted = packet
        recounted[8] ^= 0x80
        try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "python3", "-c", inject,
                       recounted.map { String(format: "%02x", $0) }.joined()])
        XCTAssertTrue(net.waitUntil(timeout: 3) { try net.counters(1).dropBadTag >= before.dropBadTag + 2 })
        // A truncated header is dropped too.
        try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "python3", "-c", inject, "81"])
        usleep(200_000)
        net.stopCapture(watcher)
        let seen = try Shell.run(["tcpdump", "-r", watcher.path], check: false).output
        XCTAssertFalse(seen.contains("ICMP"), "an injected packet reached the workload:\n\(seen)")
        // The window did not move for the forged counter: ordinary traffic still flows.
        XCTAssertEqual(try net.ping(from: w1, "10.47.0.2", count: 2).status, 0)
        XCTAssertTrue(net.router(1)?.isRunning == true)
    }

    /// One host's underlay MTU at 1400: its overlay MTU follows, a DF ping above the path MTU
    /// is answered with "fragmentation needed", and bulk TCP completes.
    func testSmallUnderlayMTUIsDiscoveredAndAnswered() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        try net.addHost(mtu: 1400)
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        let status2 = try net.cli(2, ["status", "--json"])
        let router2 = try JSONDecoder().decode(RouterStatus.self, from: Data(status2.output.utf8))
        XCTAssertEqual(router2.overlayMTU, 1320)
        try net.assertSmallHopFound(overlayMTU: 1320, pingAbove: 1420, bytes: "30M")
        let c = try XCTUnwrap(try net.connections(1).first { $0.state == .established }?.counters)
        XCTAssertGreaterThan(c.dropTooBig, 0, "the oversize ping should have been counted")
    }
}

extension TestNet {
    /// Routers 1 and 2 across a hop smaller than their underlay: probing finds it (the
    /// connection's `mtu` is `overlayMTU`), a DF ping of `pingAbove` bytes of IP is answered with
    /// that MTU, and bulk TCP of `bytes` completes between workloads on 10.47.0.0/24.
    func assertSmallHopFound(overlayMTU: Int, pingAbove: Int, bytes: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let w1 = try attachWorkload(1, "10.47.0.1/24")
        let w2 = try attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(waitUntil(timeout: 10) { try self.ping(from: w1, "10.47.0.2", count: 1).status == 0 }, file: file, line: line)
        XCTAssertTrue(waitUntil(timeout: 15) { try self.connections(1).first { $0.state == .established }?.mtu == overlayMTU },
                      "\(String(describing: try? connections(1)))", file: file, line: line)
        let big = try ping(from: w1, "10.47.0.2", count: 2, extra: ["-M", "do", "-s", "\(pingAbove - 28)"])
        XCTAssertNotEqual(big.status, 0, file: file, line: line)
        XCTAssertTrue(["Frag needed", "mtu=\(overlayMTU)", "mtu = \(overlayMTU)"].contains { big.output.contains($0) }, big.output, file: file, line: line)
        let server = try startBackground(namespace: w2, ["iperf3", "-s", "-1", "-B", "10.47.0.2"], output: "\(directory)/iperf-server.log")
        usleep(500_000)
        let client = try Shell.run(["ip", "netns", "exec", w1, "iperf3", "-c", "10.47.0.2", "-n", bytes], check: false)
        stopBackground(server)
        XCTAssertEqual(client.status, 0, "bulk TCP did not complete: \(client.output)", file: file, line: line)
    }
}
