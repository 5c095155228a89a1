// The fast datapath end to end (docs/design.md §4, §5, §7): real routers whose trusted links carry
// frames through the Open vSwitch kernel datapath as VXLAN on UDP 6784, and whose other links stay
// on sleeve (UDP 6783). Needs the openvswitch module, which this machine's kernel lacks: here
// these tests skip, and scripts/test-in-vm.sh runs them in ../shared/tools/ovs-vm. Waits are
// generous because that VM may run under TCG emulation.
import Foundation
import XCTest
@testable import WeftRouter

/// Ports on the underlay (docs/design.md §3, §4).
let sleevePort = 6783
let fastdpPort = 6784

/// A ping payload pattern (`ping -p`, 16 bytes at most) that marks our frames in a capture.
let pingMarker = Array("WEFT-FASTDP-MARK".utf8)

/// The UDP port of an "address:port" from `udpDatagrams`.
func udpPort(_ endpoint: String) -> Int { Int(endpoint.split(separator: ":").last ?? "") ?? -1 }

extension TestNet {
    static let trustAll = ["--trusted-subnets", "198.18.0.0/24"]

    /// Waits until host `index`'s established connection to host `peer` satisfies `condition`.
    func waitForConnection(_ index: Int, to peer: Int, timeout: TimeInterval, _ condition: (ConnectionStatus) -> Bool) -> Bool {
        waitUntil(timeout: timeout) { try connection(index, to: peer).map(condition) ?? false }
    }

    /// Waits until the link between hosts `a` and `b` is in `mode` and ready, on both sides.
    func waitForMode(_ mode: String, _ a: Int, _ b: Int, timeout: TimeInterval) -> Bool {
        [(a, b), (b, a)].allSatisfy { index, peer in
            waitForConnection(index, to: peer, timeout: timeout) { $0.mode == mode && $0.ready }
        }
    }

    /// For failure messages: host `index`'s view of its connections and its fastdp, and the last
    /// log lines that mention the fast datapath or a problem.
    func describe(_ index: Int) -> String {
        let connections = (try? connections(index)).map { list in
            list.map { "\($0.nickname ?? "?") \($0.state) mode=\($0.mode ?? "nil") ready=\($0.ready) encrypted=\($0.encrypted) trusted=\($0.trusted) mtu=\($0.mtu.map(String.init) ?? "nil") reason=\($0.reason ?? "nil")" }
                .joined(separator: "; ")
        } ?? "no answer"
        let fastdp = (try? status(index)).map { "available=\($0.fastdp.available) flows=\($0.fastdp.flows) reason=\($0.fastdp.reason ?? "nil") mtu=\($0.overlayMTU)" } ?? "no answer"
        let lines = log(index).split(separator: "\n").filter {
            $0.localizedCaseInsensitiveContains("fastdp") || $0.contains("level=error") || $0.contains("level=warn")
        }.suffix(15)
        return "host \(index): connections [\(connections)]; fastdp [\(fastdp)]\n" + lines.joined(separator: "\n")
    }

    /// The MACs the `weft` bridge of host `index` learned, with their ports (for failure messages).
    func learnedMACs(_ index: Int) -> String {
        let fdb = (try? Shell.run(["bridge", "-n", host(index).namespace, "fdb", "show", "br", "weft"], check: false).output) ?? ""
        return fdb.split(separator: "\n").filter { !$0.contains("permanent") }.joined(separator: "; ")
    }

    /// The MAC of a workload's interface (for failure messages).
    func macAddress(_ ns: String, interface: String = "ethwe") -> String {
        ((try? Shell.run(["ip", "netns", "exec", ns, "cat", "/sys/class/net/\(interface)/address"], check: false).output) ?? "?")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Routers on hosts 1 and 2 that trust each other; `second` adds to host 2's arguments.
    func launchTrustedPair(second: [String] = []) throws {
        try launch(1, extraArgs: TestNet.trustAll)
        try launch(2, peers: [1], extraArgs: TestNet.trustAll + second)
    }

    /// Workloads 10.47.0.1 on host 1 and 10.47.0.2 on host 2, once w1 reaches w2.
    func attachPair() throws -> (w1: String, w2: String) {
        let w1 = try attachWorkload(1, "10.47.0.1/24")
        let w2 = try attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(waitUntil(timeout: 20) { try ping(from: w1, "10.47.0.2", count: 1).status == 0 }, "w1 cannot reach w2: \(describe(1))")
        return (w1, w2)
    }

    /// A marker ping from `ns` to w2 (10.47.0.2) while host 1's underlay is captured into
    /// `<name>.pcap`: the ping's result and where its frames crossed.
    func markerPingCaptured(_ name: String, from ns: String, count: Int = 3, extra: [String] = []) throws
        -> (ping: (status: Int32, output: String), markers: MarkerCount, capture: Capture) {
        let capture = try startCapture(name, namespace: host(1).namespace, interface: "eth0", filter: "udp")
        let ping = try markerPing(from: ns, "10.47.0.2", count: count, extra: extra)
        stopCapture(capture)
        return (ping, try MarkerCount(capture), capture)
    }

    /// `ping -p` with the marker from `ns`; `extra` adds e.g. a size or DF.
    func markerPing(from ns: String, _ address: String, count: Int = 3, extra: [String] = []) throws -> (status: Int32, output: String) {
        try ping(from: ns, address, count: count, extra: ["-p", pingMarker.map { String(format: "%02x", $0) }.joined()] + extra)
    }

    /// Drops UDP to `ports` in and out of the given hosts (nftables in their namespaces; one
    /// `nft -f` per host, so every rule of a host bites at the same instant).
    func blockUDP(ports: [Int], on indexes: [Int]) throws {
        let set = ports.map(String.init).joined(separator: ", ")
        let rules = "\(directory)/block-\(ports.map(String.init).joined(separator: "-")).nft"
        try """
        table inet weftblock {
          chain in { type filter hook input priority 0; udp dport { \(set) } drop; }
          chain out { type filter hook output priority 0; udp dport { \(set) } drop; }
        }

        """.write(toFile: rules, atomically: true, encoding: .utf8)
        for index in indexes { try Shell.run(["ip", "netns", "exec", host(index).namespace, "nft", "-f", rules]) }
    }

    func unblockUDP(on indexes: [Int]) throws {
        for index in indexes { try Shell.run(["ip", "netns", "exec", host(index).namespace, "nft", "delete", "table", "inet", "weftblock"]) }
    }
}

/// The captured datagrams that carry the ping marker, by underlay port.
struct MarkerCount: CustomStringConvertible {
    var fastdp = 0, sleeve = 0, other = 0
    /// The UDP payload sizes of the fastdp datagrams with the marker.
    var fastdpSizes: [Int] = []

    init(_ capture: TestNet.Capture) throws {
        for d in try capture.datagrams() where Data(d.payload).range(of: Data(pingMarker)) != nil {
            let ports = [udpPort(d.src), udpPort(d.dst)]
            if ports.contains(fastdpPort) {
                fastdp += 1
                fastdpSizes.append(d.payload.count)
            } else if ports.contains(sleevePort) {
                sleeve += 1
            } else {
                other += 1
            }
        }
    }

    var description: String { "marker datagrams: \(fastdp) on UDP \(fastdpPort) (sizes \(fastdpSizes)), \(sleeve) on UDP \(sleevePort), \(other) elsewhere" }
}

final class FastdpTests: XCTestCase {
    /// Routers start (Argon2id) and agree on fastdp (first VXLAN heartbeat) within this.
    let modeTimeout: TimeInterval = 60

    /// Every test here needs root and the openvswitch module; without them each says so and skips.
    override func setUpWithError() throws {
        try requireRoot()
        try requireOpenvswitch()
    }

    /// Two hosts that trust each other, with a password: the link is fastdp on both sides, not
    /// encrypted; workloads ping each other; the datapath holds flows; and on the underlay their
    /// frames are VXLAN on 6784 and never sleeve on 6783.
    func testTrustedLinkWithPasswordUsesFastdp() throws {
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launchTrustedPair()
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: modeTimeout), "\(net.describe(1))\n\(net.describe(2))")
        for (index, peer) in [(1, 2), (2, 1)] {
            let c = try XCTUnwrap(try net.connection(index, to: peer), net.describe(index))
            XCTAssertEqual(c.mode, "fastdp")
            XCTAssertTrue(c.ready)
            XCTAssertTrue(c.trusted)
            XCTAssertFalse(c.encrypted, "a trusted fastdp link is not encrypted (docs/design.md §5)")
            XCTAssertNil(c.reason, "fastdp is the preferred mode here: \(net.describe(index))")
            let status = try net.status(index)
            XCTAssertTrue(status.fastdp.available, net.describe(index))
            XCTAssertNil(status.fastdp.reason)
        }
        let (w1, _) = try net.attachPair()
        let (ping, markers, capture) = try net.markerPingCaptured("underlay", from: w1, count: 5)
        let flows = try (1...2).map { try net.status($0).fastdp.flows }
        XCTAssertEqual(ping.status, 0, ping.output)
        for (index, count) in flows.enumerated() {
            XCTAssertGreaterThan(count, 0, "no flows in the datapath of host \(index + 1) right after a ping: \(net.describe(index + 1))")
        }
        print("FastdpTests: \(markers)")
        XCTAssertGreaterThanOrEqual(markers.fastdp, 10, "5 echo requests and 5 replies should cross as VXLAN on \(fastdpPort); \(markers)")
        XCTAssertEqual(markers.sleeve, 0, "frames of a fastdp link crossed on sleeve; \(markers)")
        XCTAssertEqual(markers.other, 0, "\(markers)")
        // VXLAN: the I flag set in the header of every datagram to 6784.
        for d in try capture.datagrams() where udpPort(d.dst) == fastdpPort {
            XCTAssertEqual(d.payload.first, 0x08, "not a VXLAN header: \(d.payload.prefix(8))")
        }
        // Idle flows expire (10 s without a hit): the ping's flows go.
        XCTAssertTrue(net.waitUntil(timeout: 40) { try net.status(1).fastdp.flows < flows[0] },
                      "flows did not expire: \(flows[0]) after the ping, now \(net.describe(1))")
    }

    /// Fast datapath over an IPv6-only underlay: VXLAN over IPv6 (the ODP tunnel key's
    /// IPV6_SRC/DST, outer UDP checksum on), so the trusted link is fastdp on both sides and the
    /// marker frames cross as VXLAN on 6784, never on sleeve.
    func testFastdpOverIPv6Underlay() throws {
        let net = try TestNet(hosts: 2, stack: .ipv6)
        defer { net.cleanup() }
        let trust = ["--trusted-subnets", "fd00::/64"]
        try net.launch(1, extraArgs: trust)
        try net.launch(2, peers: [1], extraArgs: trust)
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: modeTimeout), "\(net.describe(1))\n\(net.describe(2))")
        let c = try XCTUnwrap(try net.connection(1, to: 2), net.describe(1))
        XCTAssertEqual(c.underlay, "ipv6")
        XCTAssertTrue(c.trusted)
        XCTAssertEqual(c.mtu, 1400, "the overlay MTU of an IPv6 underlay of 1500")
        let (w1, _) = try net.attachPair()
        let (ping, markers, capture) = try net.markerPingCaptured("underlay6", from: w1, count: 5)
        XCTAssertEqual(ping.status, 0, ping.output)
        print("FastdpTests (IPv6): \(markers)")
        XCTAssertGreaterThanOrEqual(markers.fastdp, 10, "\(markers)")
        XCTAssertEqual(markers.sleeve, 0, "\(markers)")
        for d in try capture.datagrams() where udpPort(d.dst) == fastdpPort {
            XCTAssertTrue(d.dst.hasPrefix("[fd00::"), d.dst)
            XCTAssertEqual(d.payload.first, 0x08, "not a VXLAN header: \(d.payload.prefix(8))")
        }
        let fits = try net.ping(from: w1, "10.47.0.2", count: 2, extra: ["-M", "do", "-s", "\(1400 - 28)"])
        XCTAssertEqual(fits.status, 0, "a DF ping at the overlay MTU over fastdp on IPv6: \(fits.output)")
    }

    /// The mixed-datacenter case, all at once: A and B trust each other (fastdp), C trusts nobody
    /// and nobody trusts C (encrypted sleeve); every workload reaches every other.
    func testMixedDatacenterFastdpAndEncryptedSleeveTogether() throws {
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--trusted-subnets", "198.18.0.2/32"])
        try net.launch(2, peers: [1], extraArgs: ["--trusted-subnets", "198.18.0.1/32"])
        try net.launch(3, peers: [1])
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: modeTimeout), "A–B: \(net.describe(1))\n\(net.describe(2))")
        for (a, b) in [(1, 3), (2, 3)] {
            XCTAssertTrue(net.waitForMode("sleeve", a, b, timeout: modeTimeout), "\(net.describe(a))\n\(net.describe(b))")
            for (index, peer) in [(a, b), (b, a)] {
                let c = try XCTUnwrap(try net.connection(index, to: peer), net.describe(index))
                XCTAssertTrue(c.encrypted, "host \(index) to \(peer): an untrusted link with a password is encrypted")
                XCTAssertFalse(c.trusted)
                XCTAssertNil(c.reason, "sleeve is the preferred mode of an untrusted link: \(net.describe(index))")
            }
        }
        let ab = try XCTUnwrap(try net.connection(1, to: 2))
        XCTAssertTrue(ab.trusted)
        XCTAssertFalse(ab.encrypted)

        let workloads = try (1...3).map { try net.attachWorkload($0, "10.47.0.\($0)/24") }
        for (i, ns) in workloads.enumerated() {
            for j in 1...3 where j != i + 1 {
                XCTAssertTrue(net.waitUntil(timeout: 20) { try net.ping(from: ns, "10.47.0.\(j)", count: 1).status == 0 },
                              "w\(i + 1) cannot reach 10.47.0.\(j): \(net.describe(i + 1))")
            }
        }
        // Traffic did not move any link off its mode.
        XCTAssertEqual(try net.connection(1, to: 2)?.mode, "fastdp", net.describe(1))
        XCTAssertEqual(try net.connection(3, to: 1)?.mode, "sleeve", net.describe(3))
        XCTAssertEqual(try net.connection(3, to: 2)?.mode, "sleeve", net.describe(3))
    }

    /// UDP 6784 blocked between A and B: within seconds the link is on sleeve with fastdp "on
    /// hold", and a running ping loses only a few packets; unblocked, the link returns to fastdp.
    func testBlockedVXLANFallsBackToSleeveAndReturns() throws {
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launchTrustedPair()
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: modeTimeout), "\(net.describe(1))\n\(net.describe(2))")
        let (w1, w2) = try net.attachPair()

        // 100 pings, 0.2 s apart (20 s); VXLAN is blocked 3 s in.
        let pingLog = "\(net.directory)/running-ping.txt"
        let running = try net.startBackground(namespace: w1, ["ping", "-n", "-i", "0.2", "-c", "100", "-W", "2", "10.47.0.2"], output: pingLog)
        sleep(3)
        try net.blockUDP(ports: [fastdpPort], on: [1, 2])
        let blocked = Date()
        XCTAssertTrue(net.waitForConnection(1, to: 2, timeout: 20) { $0.mode == "sleeve" && ($0.reason ?? "").hasPrefix("fastdp on hold") },
                      "host 1 did not put fastdp on hold: \(net.describe(1))")
        print(String(format: "FastdpTests: fastdp on hold %.1f s after UDP %d was blocked", Date().timeIntervalSince(blocked), fastdpPort))
        XCTAssertTrue(net.waitForConnection(2, to: 1, timeout: 10) { $0.mode == "sleeve" && ($0.reason ?? "").hasPrefix("fastdp on hold") },
                      "host 2 did not put fastdp on hold: \(net.describe(2))")
        XCTAssertTrue(net.waitUntil(timeout: 40) { !running.isRunning }, "the running ping did not finish")
        net.stopBackground(running)
        let output = (try? String(contentsOfFile: pingLog, encoding: .utf8)) ?? ""
        let counts = try XCTUnwrap(output.firstMatch(of: #/(\d+) packets transmitted, (\d+) received/#), output)
        let sent = Int(counts.1) ?? 0, received = Int(counts.2) ?? 0
        print("FastdpTests: running ping across the fallback: \(sent) sent, \(received) received")
        XCTAssertEqual(sent, 100, output)
        XCTAssertLessThanOrEqual(sent - received, 10, "the fallback to sleeve lost more than a few packets:\n\(output)")

        // On hold, the frames cross on sleeve (trusted: in clear), none on 6784.
        let (held, heldMarkers, _) = try net.markerPingCaptured("on-hold", from: w1)
        XCTAssertEqual(held.status, 0, held.output)
        XCTAssertGreaterThanOrEqual(heldMarkers.sleeve, 6, "on hold, the frames should cross on sleeve; \(heldMarkers)")
        XCTAssertEqual(heldMarkers.fastdp, 0, "\(heldMarkers)")
        let c = try XCTUnwrap(try net.connection(1, to: 2))
        XCTAssertTrue(c.ready, "sleeve carries the link while fastdp is on hold: \(net.describe(1))")

        try net.unblockUDP(on: [1, 2])
        let unblocked = Date()
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: 30), "fastdp did not resume: \(net.describe(1))\n\(net.describe(2))")
        print(String(format: "FastdpTests: fastdp resumed %.1f s after the block was lifted", Date().timeIntervalSince(unblocked)))
        // Settled (under emulation one heartbeat window may still lapse right after the return).
        sleep(2)
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: 10), "fastdp did not stay: \(net.describe(1))\n\(net.describe(2))")
        XCTAssertNil(try net.connection(1, to: 2)?.reason, net.describe(1))
        // Back on fastdp, the frames cross as VXLAN again, not on sleeve (a bridge that learned the
        // remote MACs on the TAP during the hold must not keep them there).
        let (resumed, backMarkers, _) = try net.markerPingCaptured("resumed", from: w1)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let modes = "host 1 says \(try net.connection(1, to: 2)?.mode ?? "nil"), host 2 says \(try net.connection(2, to: 1)?.mode ?? "nil")"
        XCTAssertGreaterThanOrEqual(backMarkers.fastdp, 6, "after the return to fastdp (\(modes)); \(backMarkers)")
        XCTAssertEqual(backMarkers.sleeve, 0, "after the return to fastdp (\(modes)), the frames still cross on sleeve; \(backMarkers)\n"
                       + "host 1's bridge learned: \(net.learnedMACs(1))\nw2 is \(net.macAddress(w2))")
    }

    /// UDP between A and B blocked for 20 s (sleeve 6783 and VXLAN 6784; TCP 6783 open) while
    /// a ping runs between their workloads, with no third router to relay: the gossip link stays
    /// established throughout (same connection id and established-since on both ends), fastdp goes
    /// on hold and then the data plane is reported down (`ready` false, the sleeve's heartbeat
    /// reason); after the unblock fastdp returns on both ends and the pings cross as VXLAN again.
    func testAllUDPBlockedKeepsTheGossipLinkAndFastdpReturns() throws {
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launchTrustedPair()
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: modeTimeout), "\(net.describe(1))\n\(net.describe(2))")
        let (w1, _) = try net.attachPair()
        let link = try [(1, 2), (2, 1)].map { index, peer in
            let c = try XCTUnwrap(try net.connection(index, to: peer), net.describe(index))
            return (id: c.connectionId, since: c.since)
        }
        /// Whether host `index`'s link to the other host is still the one established before the block.
        func sameLink(_ index: Int, _ c: ConnectionStatus?) -> Bool {
            guard let c, c.state == .established else { return false }
            return c.connectionId == link[index - 1].id && c.since == link[index - 1].since
        }

        let interval = 0.1, blockSeconds = 20.0, returnBound = 20.0
        let ping = try PingRun(net: net, from: w1, to: "10.47.0.2", interval: interval, seconds: 90, name: "ping-all-udp-block")
        sleep(3)
        // On host 1 only, in and out: one atomic step, so the figures count from when it bit.
        try net.blockUDP(ports: [sleevePort, fastdpPort], on: [1])
        let blockedAt = Date().timeIntervalSince1970
        var onHoldAt: Double?, downAt: Double?, onHoldReason: String?, flaps: [String] = []
        while Date().timeIntervalSince1970 < blockedAt + blockSeconds {
            let now = Date().timeIntervalSince1970
            // A status call that fails (a slow answer under emulation) is no evidence either way.
            guard let pair = try? (net.connection(1, to: 2), net.connection(2, to: 1)) else { usleep(200_000); continue }
            let (c12, c21) = pair
            for (index, c) in [(1, c12), (2, c21)] where !sameLink(index, c) {
                let seen = c.map { "\($0.state) id=\($0.connectionId ?? "nil") since=\($0.since ?? "nil")" } ?? "no connection"
                flaps.append(String(format: "%.1f s: host %d sees ", now - blockedAt, index) + seen)
            }
            if onHoldAt == nil, let c12, let c21, c12.mode == "sleeve", c21.mode == "sleeve" {
                onHoldAt = now
                onHoldReason = c12.reason
            }
            if downAt == nil, let c12, let c21, !c12.ready, !c21.ready { downAt = now }
            usleep(200_000)
        }
        let during = try [(1, 2), (2, 1)].map { try net.connection($0, to: $1) }
        try net.unblockUDP(on: [1])
        let unblockedAt = Date().timeIntervalSince1970
        // Until fastdp is back on both ends and the running ping is answered again (ping writes
        // each reply as it comes), then a few seconds more of pings for the figures.
        var fastdpAt: Double?, answeredAgainAt: Double?
        while fastdpAt == nil || answeredAgainAt == nil, Date().timeIntervalSince1970 < unblockedAt + 60 {
            if fastdpAt == nil, [(1, 2), (2, 1)].allSatisfy({ index, peer in
                (try? net.connection(index, to: peer)).map { $0.mode == "fastdp" && $0.ready } ?? false
            }) { fastdpAt = Date().timeIntervalSince1970 }
            answeredAgainAt = ping.replies().values.filter { $0 >= unblockedAt }.min()
            usleep(200_000)
        }
        sleep(3)
        net.stopBackground(ping.process)
        let after = try [(1, 2), (2, 1)].map { try net.connection($0, to: $1) }

        let (lost, answered, last, rate) = ping.losses()
        let lostInBlock = lost.filter { $0.sent >= blockedAt && $0.sent < unblockedAt }
        let lostAfter = lost.filter { $0.sent >= unblockedAt }
        let seconds = { (t: Double?, from: Double) in t.map { String(format: "%.1f s", $0 - from) } ?? "never" }
        print("FastdpTests: all UDP 1↔2 blocked \(Int(blockSeconds)) s, ping at \(String(format: "%.0f", rate)) pps: "
              + "fastdp on hold after \(seconds(onHoldAt, blockedAt)) (reason \"\(onHoldReason ?? "nil")\"), "
              + "data plane reported down after \(seconds(downAt, blockedAt)); "
              + "\(lostInBlock.count) pings lost during the block, \(lostAfter.count) after the unblock "
              + "(\(lost.count) of \(last) in all); after the unblock fastdp is back on both ends after \(seconds(fastdpAt, unblockedAt)), "
              + "pings answered again after \(seconds(answeredAgainAt, unblockedAt)); link flaps: \(flaps.count)")

        XCTAssertEqual(flaps, [], "the gossip link did not stay established through the block")
        for (index, c) in zip([1, 2, 1, 2], during + after) {
            XCTAssertTrue(sameLink(index, c), "host \(index)'s link was re-established: \(net.describe(index))")
        }
        XCTAssertNotNil(onHoldAt, "fastdp did not go on hold on both ends: \(net.describe(1))\n\(net.describe(2))")
        XCTAssertLessThanOrEqual((onHoldAt ?? .infinity) - blockedAt, 5, "fastdp went on hold too late")
        XCTAssertNotNil(downAt, "the data plane was not reported down on both ends: \(net.describe(1))\n\(net.describe(2))")
        for (index, c) in zip([1, 2], during) {
            XCTAssertEqual(c?.mode, "sleeve", net.describe(index))
            XCTAssertEqual(c?.ready, false, "nothing crosses while all UDP is blocked: \(net.describe(index))")
            XCTAssertTrue((c?.reason ?? "").contains("no heartbeat answer"), "status should say the heartbeats go unanswered: \(net.describe(index))")
        }
        XCTAssertTrue(net.log(1).contains("data plane does not answer heartbeats"), net.describe(1))
        XCTAssertGreaterThan(answered, Int(5 * rate), "the ping ran")
        // No relay: every ping sent once the block bites is lost until it lifts.
        XCTAssertGreaterThanOrEqual(Double(lostInBlock.count), (blockSeconds - 3) * rate, "pings crossed a blocked underlay?")
        XCTAssertNotNil(fastdpAt, "fastdp did not return after the unblock: \(net.describe(1))\n\(net.describe(2))")
        XCTAssertLessThanOrEqual((fastdpAt ?? .infinity) - unblockedAt, returnBound, "fastdp returned too late")
        XCTAssertNotNil(answeredAgainAt, "no ping was answered after the unblock")
        XCTAssertLessThanOrEqual((answeredAgainAt ?? .infinity) - unblockedAt, returnBound, "pings passed again too late")
        XCTAssertLessThanOrEqual(Double(lostAfter.count), returnBound * rate, "pings lost after the unblock")

        // Back on fastdp, the frames cross as VXLAN again, not on sleeve.
        let (resumed, markers, _) = try net.markerPingCaptured("after-all-udp-block", from: w1)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertGreaterThanOrEqual(markers.fastdp, 6, "after the return to fastdp; \(markers)")
        XCTAssertEqual(markers.sleeve, 0, "after the return to fastdp the frames still cross on sleeve; \(markers)")
    }

    /// Only UDP 6783 (sleeve) blocked between A and B for 10 s, VXLAN open: the link stays on
    /// fastdp and ready, the routes keep it (its data plane answers heartbeats through VXLAN), and
    /// a running ping between the workloads loses nothing.
    func testSleeveBlockedAloneKeepsFastdpCarryingTraffic() throws {
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launchTrustedPair()
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: modeTimeout), "\(net.describe(1))\n\(net.describe(2))")
        let (w1, _) = try net.attachPair()
        let ping = try PingRun(net: net, from: w1, to: "10.47.0.2", interval: 0.1, seconds: 16, name: "ping-sleeve-block")
        sleep(3)
        try net.blockUDP(ports: [sleevePort], on: [1])
        let blockedAt = Date().timeIntervalSince1970
        var offFastdp: [String] = []
        while Date().timeIntervalSince1970 < blockedAt + 10 {
            for (index, peer) in [(1, 2), (2, 1)] {
                if let c = try? net.connection(index, to: peer), c.mode != "fastdp" || !c.ready {
                    offFastdp.append(String(format: "%.1f s: host %d mode=", Date().timeIntervalSince1970 - blockedAt, index)
                                     + "\(c.mode ?? "nil") ready=\(c.ready) reason=\(c.reason ?? "nil")")
                }
            }
            usleep(200_000)
        }
        let hop = try net.peers(1).first { $0.nickname == net.nickname(2) }?.nextHop
        try net.unblockUDP(on: [1])
        ping.process.waitUntilExit()
        let (lost, answered, last, _) = ping.losses()
        print("FastdpTests: UDP \(sleevePort) alone blocked 10 s on a fastdp link: \(lost.count) of \(last) pings lost; "
              + "off fastdp or not ready \(offFastdp.count) times")
        XCTAssertLessThanOrEqual(offFastdp.count, 2, "fastdp carries the link; the sleeve's silence must not take it off: \(offFastdp)")
        XCTAssertNotNil(hop, "router 1 had no route to router 2 while fastdp carried their link: \(net.describe(1))")
        XCTAssertGreaterThan(answered, 50, "the ping ran")
        // Under emulation a heartbeat window may lapse for a moment; the bug this guards lost all.
        XCTAssertLessThanOrEqual(lost.count, 5, "pings lost although VXLAN was open: \(lost.prefix(10))\n\(net.describe(1))")
    }

    /// Underlay MTU 1454 on both hosts (where a fixed 1474-byte heartbeat never fit): fastdp is
    /// still chosen, its MTU leaves room for the 50 bytes of VXLAN, and a DF ping of exactly that
    /// MTU crosses as VXLAN.
    func testSmallUnderlayMTUStillUsesFastdp() throws {
        let net = try TestNet(hosts: 0)
        defer { net.cleanup() }
        try net.addHost(mtu: 1454)
        try net.addHost(mtu: 1454)
        try net.launchTrustedPair()
        XCTAssertTrue(net.waitForMode("fastdp", 1, 2, timeout: modeTimeout), "\(net.describe(1))\n\(net.describe(2))")
        let c = try XCTUnwrap(try net.connection(1, to: 2), net.describe(1))
        let mtu = try XCTUnwrap(c.mtu, "the fastdp connection has no MTU: \(net.describe(1))")
        let overlay = try net.status(1).overlayMTU
        print("FastdpTests: underlay 1454: connection MTU \(mtu), overlay (workload) MTU \(overlay)")
        XCTAssertLessThanOrEqual(mtu + 50, 1454, "VXLAN adds 50 bytes (docs/design.md §7): \(mtu) does not fit a 1454 underlay")
        XCTAssertLessThanOrEqual(mtu, overlay, "a workload could not send the connection's MTU through its \(overlay)-byte interface")

        let (w1, _) = try net.attachPair()
        let (big, markers, _) = try net.markerPingCaptured("df", from: w1, extra: ["-M", "do", "-s", "\(mtu - 28)"])
        XCTAssertEqual(big.status, 0, "a DF ping of \(mtu) bytes did not cross: \(big.output)\n\(net.describe(1))")
        // VXLAN header, inner Ethernet, then the IP packet of exactly `mtu` bytes.
        XCTAssertTrue(markers.fastdpSizes.contains(8 + 14 + mtu), "no \(mtu)-byte packet crossed as VXLAN; \(markers)")
        XCTAssertEqual(markers.sleeve, 0, "\(markers)")
        XCTAssertEqual(try net.connection(1, to: 2)?.mode, "fastdp", net.describe(1))
    }

    /// An overlay MTU forced above what the underlay carries for VXLAN (`--mtu 1420` on a 1454
    /// underlay: a full-size heartbeat is 1470 bytes on the wire): the heartbeat never fits, the
    /// link stays on sleeve, and the reason says so with the figures (docs/design.md §7).
    func testHeartbeatTooLargeForTheUnderlayIsReportedWithTheFigures() throws {
        let net = try TestNet(hosts: 0)
        defer { net.cleanup() }
        try net.addHost(mtu: 1454)
        try net.addHost(mtu: 1454)
        try net.launch(1, extraArgs: TestNet.trustAll + ["--mtu", "1420"])
        try net.launch(2, peers: [1], extraArgs: TestNet.trustAll + ["--mtu", "1420"])
        let expected = "underlay path MTU 1454 too small for overlay MTU 1420"
        XCTAssertTrue(net.waitForConnection(1, to: 2, timeout: modeTimeout) { ($0.reason ?? "").contains(expected) },
                      "\(net.describe(1))")
        XCTAssertEqual(try net.connection(1, to: 2)?.mode, "sleeve", net.describe(1))
        XCTAssertEqual(try net.connection(1, to: 2)?.encrypted, false, net.describe(1))
    }

    /// `--no-fastdp` on one side of a trusted link: the link is sleeve (unencrypted, trusted),
    /// and each side says why.
    func testNoFastdpOnOneSideKeepsTheLinkOnSleeveWithTheReason() throws {
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launchTrustedPair(second: ["--no-fastdp"])
        XCTAssertTrue(net.waitForConnection(2, to: 1, timeout: modeTimeout) {
            $0.mode == "sleeve" && $0.ready && ($0.reason ?? "").contains("--no-fastdp")
        }, net.describe(2))
        XCTAssertTrue(net.waitForConnection(1, to: 2, timeout: 15) {
            $0.mode == "sleeve" && $0.ready && $0.reason == "fastdp unavailable on the peer"
        }, net.describe(1))
        for (index, peer) in [(1, 2), (2, 1)] {
            let c = try XCTUnwrap(try net.connection(index, to: peer))
            XCTAssertTrue(c.trusted)
            XCTAssertFalse(c.encrypted, "a trusted link is not encrypted, whichever overlay carries it (docs/design.md §5)")
        }
        XCTAssertTrue(try net.status(1).fastdp.available, net.describe(1))
        let status2 = try net.status(2)
        XCTAssertFalse(status2.fastdp.available)
        XCTAssertEqual(status2.fastdp.reason, "disabled by --no-fastdp")
        XCTAssertEqual(status2.fastdp.flows, 0)

        let (w1, _) = try net.attachPair()
        let (ping, markers, _) = try net.markerPingCaptured("sleeve", from: w1)
        XCTAssertEqual(ping.status, 0, ping.output)
        XCTAssertGreaterThanOrEqual(markers.sleeve, 6, "\(markers)")
        XCTAssertEqual(markers.fastdp, 0, "\(markers)")
        XCTAssertEqual(try net.connection(1, to: 2)?.mode, "sleeve", net.describe(1))
    }
}
