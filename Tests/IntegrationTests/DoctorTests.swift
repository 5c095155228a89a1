// `weft doctor` against real faults built in network namespaces: each test breaks one thing on
// a test host and checks that the report names it (and that a clean host reports all ok).
import Foundation
import XCTest
@testable import WeftHost
@testable import WeftRouter

extension TestNet {
    /// Runs `weft doctor --json` inside host `index`'s namespace.
    func doctor(_ index: Int, sampleSeconds: Int = 1) throws -> (status: Int32, checks: [DoctorCheck], output: String) {
        let h = host(index)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", h.namespace, binary("weft"), "doctor", "--json",
                             "--socket", h.socket, "--sample-seconds", "\(sampleSeconds)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard let checks = try? JSONDecoder().decode([DoctorCheck].self, from: data) else {
            throw ShellError(description: "weft doctor printed no report: \(output)")
        }
        return (process.terminationStatus, checks, output)
    }

    /// Waits until the router of host `index` answers on its control socket.
    func routerUp(_ index: Int) -> Bool {
        waitUntil(timeout: 15) {
            try ControlClient(socketPath: host(index).socket, timeoutSeconds: 2).request(method: "GET", path: "/v1/status").status == 200
        }
    }

    /// br_netfilter is built into this kernel and on by default in every namespace; a clean
    /// host turns it off (as an operator would), the fault test turns it on.
    func setBridgeNetfilter(_ index: Int, on: Bool) throws {
        for key in ["iptables", "ip6tables", "arptables"] {
            try Shell.run(["ip", "netns", "exec", host(index).namespace, "sysctl", "-qw", "net.bridge.bridge-nf-call-\(key)=\(on ? 1 : 0)"])
        }
    }

    func ip(_ index: Int, _ args: String) throws {
        try Shell.run(["ip", "-n", host(index).namespace] + args.split(separator: " ").map(String.init))
    }
}

extension Array where Element == DoctorCheck {
    subscript(_ name: String) -> DoctorCheck { first { $0.check == name }! }
    var summary: String { map { "\($0.status.rawValue) \($0.check): \($0.detail)" }.joined(separator: "\n") }
}

final class DoctorTests: XCTestCase {
    /// Whether br_netfilter's sysctls exist here (built in, or loadable).
    private func bridgeNetfilterAvailable() -> Bool {
        if FileManager.default.fileExists(atPath: "/proc/sys/net/bridge") { return true }
        _ = try? Shell.run(["modprobe", "br_netfilter"], check: false)
        return FileManager.default.fileExists(atPath: "/proc/sys/net/bridge")
    }

    /// Two hosts, encrypted sleeve, nothing wrong: every check ok, exit status 0. The only
    /// environment adjustment: br_netfilter (built into this kernel, on by default in every
    /// namespace) is turned off on the host, as the bridge-netfilter check advises.
    func testCleanSetupReportsAllOk() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        if bridgeNetfilterAvailable() { try net.setBridgeNetfilter(1, on: false) }
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1), "\(String(describing: try? net.connections(1)))")
        let report = try net.doctor(1)
        XCTAssertEqual(report.status, 0, report.checks.summary)
        XCTAssertEqual(report.checks.map(\.check), ["mtu", "offload", "bridge-mac", "bridge-netfilter", "bonding", "fastdp", "fragmentation", "firewall"])
        for check in report.checks {
            XCTAssertEqual(check.status, .ok, "\(check.check): \(check.detail)")
        }
        let mtu = report.checks["mtu"].detail
        XCTAssertTrue(mtu.contains("underlay eth0 MTU 1500"), mtu)
        XCTAssertTrue(mtu.contains("sleeve needs overlay 1420 + 80 = 1500 <= 1500: ok"), mtu)
        XCTAssertTrue(mtu.contains("path MTU 1420"), mtu)
        XCTAssertTrue(report.checks["bridge-mac"].detail.contains("equal to the peer name"), report.checks["bridge-mac"].detail)
        XCTAssertTrue(report.checks["fastdp"].detail.contains("(\(net.nickname(2))): sleeve"), report.checks["fastdp"].detail)

        // The text report: one line per check, and the router named first.
        let text = try Shell.run(["ip", "netns", "exec", net.host(1).namespace, binary("weft"), "doctor", "--sample-seconds", "0",
                                  "--socket", net.host(1).socket], check: false)
        XCTAssertEqual(text.status, 0, text.output)
        let lines = text.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 9, text.output)
        XCTAssertTrue(lines[0].hasPrefix("router "), text.output)
        XCTAssertTrue(lines[1].hasPrefix("ok    mtu "), text.output)
    }

    /// An underlay of MTU 1454 with the overlay forced to 1420: sleeve packets need 1500.
    func testUnderlay1454WithMTU1420FailsWithTheArithmetic() throws {
        try requireRoot()
        let net = try TestNet(hosts: 0)
        defer { net.cleanup() }
        try net.addHost(mtu: 1454)
        try net.addHost(mtu: 1454)
        try net.launch(1, extraArgs: ["--mtu", "1420"])
        try net.launch(2, peers: [1], extraArgs: ["--mtu", "1420"])
        XCTAssertTrue(net.sleeveReady(1, peers: 1), "\(String(describing: try? net.connections(1)))")
        // Path-MTU probing finds 1454 - 80 = 1374 towards the peer.
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.connections(1).contains { $0.mtu == 1374 } },
                      "\(String(describing: try? net.connections(1)))")
        let report = try net.doctor(1)
        XCTAssertEqual(report.status, 1, "a failed check exits 1")
        let mtu = report.checks["mtu"]
        XCTAssertEqual(mtu.status, .fail)
        XCTAssertTrue(mtu.detail.contains("underlay eth0 MTU 1454"), mtu.detail)
        XCTAssertTrue(mtu.detail.contains("router overlay MTU 1420"), mtu.detail)
        XCTAssertTrue(mtu.detail.contains("sleeve needs overlay 1420 + 80 = 1500 > 1454: fail"), mtu.detail)
        XCTAssertTrue(mtu.detail.contains("fastdp needs overlay 1420 + 50 = 1470 > 1454: fail"), mtu.detail)
        XCTAssertTrue(mtu.detail.contains("(\(net.nickname(2))): path MTU 1374 < overlay 1420"), mtu.detail)
        XCTAssertTrue(mtu.fix?.contains("--mtu 1374") == true, mtu.fix ?? "")
    }

    /// A bridge on the host whose MAC follows its ports: a port with a lower MAC joins and the
    /// bridge's address changes under it.
    func testBridgeWithAnInheritedMACWarns() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        try net.launch(1)
        XCTAssertTrue(net.routerUp(1))
        try net.ip(1, "link add br0 type bridge")
        try net.ip(1, "link add bp1 address 02:ee:00:00:00:01 type veth peer name bp1x")
        try net.ip(1, "link set bp1 master br0 up")
        try net.ip(1, "addr add 192.0.2.1/24 dev br0")
        try net.ip(1, "link set br0 up")
        let before = try Shell.run(["ip", "netns", "exec", net.host(1).namespace, "cat", "/sys/class/net/br0/address"]).output
        try net.ip(1, "link add bp2 address 02:00:00:00:00:01 type veth peer name bp2x")
        try net.ip(1, "link set bp2 master br0 up")
        let after = try Shell.run(["ip", "netns", "exec", net.host(1).namespace, "cat", "/sys/class/net/br0/address"]).output
        XCTAssertNotEqual(before, after, "the fault itself: br0 took the lower port MAC")

        let report = try net.doctor(1)
        XCTAssertEqual(report.status, 0, "warnings do not fail: \(report.checks.summary)")
        let check = report.checks["bridge-mac"]
        XCTAssertEqual(check.status, .warn, check.detail)
        XCTAssertTrue(check.detail.contains("bridge br0 inherits its MAC 02:00:00:00:00:01"), check.detail)
        XCTAssertTrue(check.detail.contains("bridge weft MAC"), "the weft bridge itself is fine: \(check.detail)")
        XCTAssertTrue(check.fix?.contains("ip link set br0 address 02:00:00:00:00:01") == true, check.fix ?? "")

        try net.ip(1, "link set br0 address 02:00:00:00:00:01")  // the fix: now set explicitly
        XCTAssertEqual(try net.doctor(1).checks["bridge-mac"].status, .ok)
    }

    func testBridgeNetfilterOnWarns() throws {
        try requireRoot()
        try XCTSkipUnless(bridgeNetfilterAvailable(), "br_netfilter is neither built in nor loadable here (modprobe br_netfilter failed)")
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        try net.setBridgeNetfilter(1, on: true)
        try net.launch(1)
        XCTAssertTrue(net.routerUp(1))
        let check = try net.doctor(1).checks["bridge-netfilter"]
        XCTAssertEqual(check.status, .warn)
        XCTAssertTrue(check.detail.contains("bridge-nf-call-iptables=1"), check.detail)
        XCTAssertTrue(check.detail.contains("host iptables/ip6tables/arptables rules now apply"), check.detail)
        try net.setBridgeNetfilter(1, on: false)
        XCTAssertEqual(try net.doctor(1).checks["bridge-netfilter"].status, .ok)
    }

    /// w1 —1500— host 1 —1400— w2: large non-DF pings from w1 are fragmented by host 1 while
    /// doctor samples its counters.
    func testFragmentsAcrossALowMTUHopWarn() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let ns = net.host(1).namespace
        let (w1, w2) = (try net.addWorkload(), try net.addWorkload())
        try net.ip(1, "link add fa0 mtu 1500 type veth peer name fa1 netns \(w1) mtu 1500")
        try net.ip(1, "link add fb0 mtu 1400 type veth peer name fb1 netns \(w2) mtu 1400")
        try net.ip(1, "addr add 192.0.2.2/30 dev fa0")
        try net.ip(1, "addr add 192.0.2.5/30 dev fb0")
        try net.ip(1, "link set fa0 up")
        try net.ip(1, "link set fb0 up")
        try Shell.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for (w, ifname, address, gateway) in [(w1, "fa1", "192.0.2.1/30", "192.0.2.2"), (w2, "fb1", "192.0.2.6/30", "192.0.2.5")] {
            try Shell.run(["ip", "-n", w, "addr", "add", address, "dev", ifname])
            try Shell.run(["ip", "-n", w, "link", "set", ifname, "up"])
            try Shell.run(["ip", "-n", w, "route", "add", "default", "via", gateway])
        }
        let quiet = try net.doctor(1).checks["fragmentation"]
        XCTAssertEqual(quiet.status, .ok, quiet.detail)

        let ping = try net.startBackground(namespace: w1, ["ping", "-M", "dont", "-s", "1450", "-i", "0.2", "-w", "8", "192.0.2.6"],
                                           output: "\(net.directory)/frag-ping.log")
        usleep(500_000)
        let check = try net.doctor(1, sampleSeconds: 3).checks["fragmentation"]
        net.stopBackground(ping)
        XCTAssertEqual(check.status, .warn, "\(check.detail)\nping: \(net.fileText("frag-ping.log"))")
        XCTAssertTrue(check.detail.contains("over 3 s:"), check.detail)
        XCTAssertFalse(check.detail.contains("FragCreates +0"), check.detail)
    }

    /// A rule in the host's own firewall that drops the fastdp port.
    func testDropRuleOnUDP6784Warns() throws {
        try requireRoot()
        let nft = DoctorHost.executable("nft")
        let iptables = DoctorHost.executable("iptables")
        try XCTSkipIf(nft == nil && iptables == nil, "neither nft nor iptables is installed (scripts/install-deps.sh installs nftables)")
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let ns = net.host(1).namespace
        if nft != nil {
            try Shell.run(["ip", "netns", "exec", ns, "nft", "add table inet wefttest"])
            try Shell.run(["ip", "netns", "exec", ns, "nft", "add chain inet wefttest input { type filter hook input priority 0 ; }"])
            try Shell.run(["ip", "netns", "exec", ns, "nft", "add rule inet wefttest input udp dport 6784 drop"])
        } else {
            try Shell.run(["ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-p", "udp", "--dport", "6784", "-j", "DROP"])
        }
        let check = try net.doctor(1).checks["firewall"]
        XCTAssertEqual(check.status, .warn, check.detail)
        XCTAssertTrue(check.detail.contains(nft != nil ? "udp dport 6784 drop" : "--dport 6784 -j DROP"), check.detail)
        XCTAssertTrue(check.fix?.contains("UDP 6784") == true, check.fix ?? "")
    }

    /// A balance-rr bond under the underlay bridge. This kernel has no bonding; the test runs
    /// where it exists, such as the OVS VM (passes there):
    ///   OVSVM_MODULES="bonding veth bridge tun" ../shared/tools/ovs-vm/run-in-ovs-vm.sh \
    ///     "WEFT_BIN_DIR=$PWD/.build/debug .build/debug/WeftPackageTests.xctest IntegrationTests.DoctorTests"
    func testBalanceRRBondUnderABridgeWarns() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let made = try Shell.run(["ip", "-n", net.host(1).namespace, "link", "add", "bond0", "type", "bond", "mode", "balance-rr"], check: false)
        try XCTSkipIf(made.status != 0, "this kernel has no bonding driver (\(made.output.trimmingCharacters(in: .whitespacesAndNewlines))); run in the OVS VM")
        try net.ip(1, "link add br0 type bridge")
        try net.ip(1, "link set bond0 master br0 up")
        try net.ip(1, "addr add 192.0.2.1/24 dev br0")
        try net.ip(1, "link set br0 address 02:00:00:00:00:aa up")
        let check = try net.doctor(1).checks["bonding"]
        XCTAssertEqual(check.status, .warn, check.detail)
        XCTAssertTrue(check.detail.contains("bond0 is a balance-rr bond under bridge br0"), check.detail)
        XCTAssertTrue(check.fix?.contains("802.3ad") == true)
    }
}

extension TestNet {
    func fileText(_ name: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
    }
}
