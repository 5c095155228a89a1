import Foundation
import XCTest
@testable import WeftNetlink

/// Everything that changes interfaces happens in `wnl*` namespaces; the root namespace is only read.
final class RouteNetlinkTests: XCTestCase {
    let bridgeMAC: [UInt8] = [0x02, 0x57, 0x45, 0x46, 0x54, 0x01]

    func testBridgeHasGivenMACAndMTUAndAssignTypeSet() throws {
        try withNamespaces(1) { ns in
            let host = ns[0]
            try host.netlink.createBridge(name: "weft", mac: bridgeMAC, mtu: 1376)

            let link = try XCTUnwrap(host.netlink.link(named: "weft"))
            XCTAssertEqual(link.kind, "bridge")
            XCTAssertEqual(link.mac, bridgeMAC)
            XCTAssertEqual(link.mtu, 1376)
            XCTAssertFalse(link.isUp)
            XCTAssertNil(link.masterIndex)
            // This process's /sys shows the root namespace, so the module must not guess.
            XCTAssertNil(link.addrAssignType)
            XCTAssertEqual(try host.netlink.links().first { $0.name == "weft" }, link)

            let shown = try ip("-n", host.name, "-d", "link", "show", "weft")
            XCTAssertTrue(shown.contains("mtu 1376"), shown)
            XCTAssertTrue(shown.contains("link/ether 02:57:45:46:54:01"), shown)
            XCTAssertTrue(shown.contains("bridge forward_delay"), shown)
            let assign = try ip("netns", "exec", host.name, "cat", "/sys/class/net/weft/addr_assign_type")
            XCTAssertEqual(assign.trimmingCharacters(in: .whitespacesAndNewlines), "3")

            XCTAssertThrowsError(try host.netlink.createBridge(name: "weft", mac: bridgeMAC, mtu: 1376)) { error in
                let error = error as! NetlinkError
                XCTAssertEqual(error.errno, EEXIST)
                XCTAssertTrue(error.description.hasPrefix("create bridge 'weft': File exists (EEXIST)"),
                              error.description)
            }
        }
    }

    /// A bridge's MTU given at creation is not "set by user" for the kernel, which then follows
    /// the ports' MTU; createBridge pins it.
    func testBridgeMTUStaysWhenLargerPortJoins() throws {
        try withNamespaces(1) { ns in
            let nl = ns[0].netlink
            try nl.createBridge(name: "weft", mac: bridgeMAC, mtu: 1376)
            try nl.createVeth(name: "vport", peerName: "vpeer", peerNamespaceFd: nil, mtu: 1500)
            try nl.setMaster("vport", master: "weft")
            XCTAssertEqual(try nl.link(named: "weft")?.mtu, 1376)
            XCTAssertTrue(try ip("-n", ns[0].name, "link", "show", "weft").contains("mtu 1376"))
            // …and the MAC stays the one we set, although a lower MAC joined.
            XCTAssertEqual(try nl.link(named: "weft")?.mac, bridgeMAC)
        }
    }

    func testVethIntoWorkloadNamespaceAddressesMasterUpMTU() throws {
        try withNamespaces(2) { ns in
            let host = ns[0], workload = ns[1]
            try host.netlink.createBridge(name: "weft", mac: bridgeMAC, mtu: 1376)
            try host.netlink.createVeth(name: "vethwl0", peerName: "ethwl", peerNamespaceFd: workload.fd, mtu: 1376)

            let hostEnd = try XCTUnwrap(host.netlink.link(named: "vethwl0"))
            XCTAssertEqual(hostEnd.kind, "veth")
            XCTAssertEqual(hostEnd.mtu, 1376)
            XCTAssertNil(try host.netlink.link(named: "ethwl"), "peer must not be in the host namespace")
            let peer = try XCTUnwrap(workload.netlink.link(named: "ethwl"))
            XCTAssertEqual(peer.kind, "veth")
            XCTAssertEqual(peer.mtu, 1376)
            XCTAssertTrue(try ip("-n", workload.name, "link", "show", "ethwl").contains("mtu 1376"))

            // Addresses, each added twice (idempotent), IPv4 and IPv6.
            for _ in 0..<2 {
                try workload.netlink.addAddress("ethwl", cidr: "10.32.0.5/12")
                try workload.netlink.addAddress("ethwl", cidr: "fd00:77::5/64")
                try host.netlink.addAddress("weft", cidr: "10.32.0.1/12")
            }
            let shown = try ip("-n", workload.name, "addr", "show", "ethwl")
            XCTAssertTrue(shown.contains("inet 10.32.0.5/12"), shown)
            XCTAssertTrue(shown.contains("inet6 fd00:77::5/64"), shown)
            XCTAssertTrue(try ip("-n", host.name, "addr", "show", "weft").contains("inet 10.32.0.1/12"))
            let listed = try workload.netlink.addresses("ethwl")
            XCTAssertEqual(listed.filter { $0 == "10.32.0.5/12" }.count, 1, "\(listed)")
            XCTAssertEqual(listed.filter { $0 == "fd00:77::5/64" }.count, 1, "\(listed)")
            XCTAssertEqual(try host.netlink.addresses("weft"), ["10.32.0.1/12"])

            // Deleting twice is harmless.
            for _ in 0..<2 { try workload.netlink.deleteAddress("ethwl", cidr: "fd00:77::5/64") }
            XCTAssertFalse(try workload.netlink.addresses("ethwl").contains("fd00:77::5/64"))
            XCTAssertFalse(try ip("-n", workload.name, "addr", "show", "ethwl").contains("fd00:77::5"))

            // Master.
            let bridge = try XCTUnwrap(host.netlink.link(named: "weft"))
            try host.netlink.setMaster("vethwl0", master: "weft")
            XCTAssertEqual(try host.netlink.link(named: "vethwl0")?.masterIndex, bridge.index)
            XCTAssertTrue(try ip("-n", host.name, "link", "show", "vethwl0").contains("master weft"))

            // Up.
            try host.netlink.setUp("weft", true)
            try host.netlink.setUp("vethwl0", true)
            try workload.netlink.setUp("ethwl", true)
            XCTAssertEqual(try host.netlink.link(named: "vethwl0")?.isUp, true)
            XCTAssertEqual(try workload.netlink.link(named: "ethwl")?.isUp, true)
            XCTAssertTrue(try ip("-n", host.name, "link", "show", "vethwl0").contains(",UP"))
            try workload.netlink.setUp("ethwl", false)
            XCTAssertEqual(try workload.netlink.link(named: "ethwl")?.isUp, false)

            // MTU and MAC.
            try workload.netlink.setMTU("ethwl", 1300)
            XCTAssertEqual(try workload.netlink.link(named: "ethwl")?.mtu, 1300)
            XCTAssertTrue(try ip("-n", workload.name, "link", "show", "ethwl").contains("mtu 1300"))
            let mac: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x42]
            try workload.netlink.setMAC("ethwl", mac)
            XCTAssertEqual(try workload.netlink.link(named: "ethwl")?.mac, mac)

            // Release from the bridge.
            try host.netlink.setMaster("vethwl0", master: nil)
            XCTAssertNil(try host.netlink.link(named: "vethwl0")?.masterIndex)

            // Deleting one end removes both; deleting again is harmless.
            try host.netlink.deleteLink("vethwl0")
            try host.netlink.deleteLink("vethwl0")
            XCTAssertNil(try host.netlink.link(named: "vethwl0"))
            XCTAssertNil(try workload.netlink.link(named: "ethwl"))
        }
    }

    func testErrorsSayWhatFailed() throws {
        try withNamespaces(1) { ns in
            let nl = ns[0].netlink
            XCTAssertThrowsError(try nl.createBridge(name: "weft-bridge-0123", mac: bridgeMAC, mtu: 1376)) { error in
                let error = error as! NetlinkError
                XCTAssertEqual(error.errno, EINVAL)
                XCTAssertTrue(error.description.contains("create bridge 'weft-bridge-0123'"), error.description)
                XCTAssertTrue(error.description.contains("16 bytes long; Linux allows at most 15"), error.description)
            }
            XCTAssertThrowsError(try nl.setMTU("nosuchlink", 1400)) { error in
                let error = error as! NetlinkError
                XCTAssertEqual(error.errno, ENODEV)
                XCTAssertTrue(error.description.hasPrefix("set MTU of 'nosuchlink' to 1400: No such device (ENODEV)"),
                              error.description)
            }
            try nl.createBridge(name: "weft", mac: bridgeMAC, mtu: 1376)
            XCTAssertThrowsError(try nl.setMaster("weft", master: "nosuchbridge")) { error in
                XCTAssertEqual((error as! NetlinkError).errno, ENODEV)
            }
            XCTAssertThrowsError(try nl.addAddress("weft", cidr: "10.32.0.1")) { error in
                XCTAssertTrue("\(error)".contains("not an address with a prefix length"), "\(error)")
            }
            XCTAssertThrowsError(try nl.addAddress("weft", cidr: "10.32.0.1/33"))
            // The kernel rejects a multicast MAC; its extended-ACK text, if any, is appended.
            XCTAssertThrowsError(try nl.setMAC("weft", [0x01, 0, 0, 0, 0, 1])) { error in
                let error = error as! NetlinkError
                XCTAssertEqual(error.errno, EADDRNOTAVAIL)
                XCTAssertTrue(error.description.hasPrefix("set MAC of 'weft' to 01:00:00:00:00:01:"), error.description)
            }
            // The kernel's extended ACK text ends up in the error.
            try nl.createBridge(name: "weft2", mac: [0x02, 0, 0, 0, 0, 2], mtu: 1376)
            XCTAssertThrowsError(try nl.setMaster("weft2", master: "weft")) { error in
                let error = error as! NetlinkError
                XCTAssertEqual(error.errno, ELOOP)
                XCTAssertEqual(error.detail, "Can not enslave a bridge to a bridge")
                XCTAssertTrue(error.description.hasPrefix("set master of 'weft2' to 'weft': "), error.description)
                XCTAssertTrue(error.description.hasSuffix("(ELOOP): Can not enslave a bridge to a bridge"),
                              error.description)
            }
            // Nothing broke the socket: it still answers.
            XCTAssertNotNil(try nl.link(named: "weft"))
            try nl.deleteLink("nosuchlink")
            XCTAssertNil(try nl.link(named: "nosuchlink"))
        }
    }

    func testMissingNamespaceIsNamedInTheError() throws {
        XCTAssertThrowsError(try NetworkNamespace.open(name: "wnl-missing-ns")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("network namespace 'wnl-missing-ns' not found (/var/run/netns/wnl-missing-ns)"), text)
        }
        XCTAssertThrowsError(try NetworkNamespace.open(pid: Int32.max)) { error in
            XCTAssertTrue("\(error)".contains("/proc/2147483647/ns/net"), "\(error)")
        }
    }

    func testFreshNamespaceListsOnlyLoopbackAndCallerStaysInItsNamespace() throws {
        let before = currentThreadNamespace()
        try withNamespaces(1) { ns in
            XCTAssertEqual(currentThreadNamespace(), before)
            let links = try ns[0].netlink.links()
            XCTAssertEqual(links.map(\.name), ["lo"])
            XCTAssertEqual(links.first?.index, 1)
            XCTAssertEqual(links.first?.isUp, false)

            let inside = try NetworkNamespace.perform(inNamespaceFd: ns[0].fd) { currentThreadNamespace() }
            XCTAssertNotEqual(inside, before)
            XCTAssertEqual(currentThreadNamespace(), before)
            struct Marker: Error {}
            XCTAssertThrowsError(try NetworkNamespace.perform(inNamespaceFd: ns[0].fd) { throw Marker() }) { error in
                XCTAssertTrue(error is Marker)
            }
        }
        XCTAssertThrowsError(try NetworkNamespace.perform(inNamespaceFd: -1) { 1 }) { error in
            XCTAssertEqual((error as! NetlinkError).errno, EBADF)
        }
    }

    /// Reading only: the root namespace is listed, and sysfs (which shows this namespace) fills
    /// addrAssignType.
    func testRootNamespaceIsReadableWithSysfs() throws {
        let nl = try RouteNetlink()
        let lo = try XCTUnwrap(nl.link(named: "lo"))
        XCTAssertEqual(lo.index, 1)
        XCTAssertNotNil(lo.addrAssignType)
        XCTAssertTrue(try nl.links().contains { $0.name == "lo" })
    }

    func testConcurrentRequestsAreSerialized() throws {
        try withNamespaces(1) { ns in
            let nl = ns[0].netlink
            for i in 0..<8 {
                try nl.createVeth(name: "c\(i)a", peerName: "c\(i)b", peerNamespaceFd: nil, mtu: 1500)
            }
            let failures = Counter()
            DispatchQueue.concurrentPerform(iterations: 64) { i in
                do {
                    let links = try nl.links()
                    if links.count != 17 { failures.add() }
                    try nl.setMTU("c\(i % 8)a", 1400 + i % 8)
                    if try nl.link(named: "c\(i % 8)b") == nil { failures.add() }
                } catch {
                    failures.add()
                }
            }
            XCTAssertEqual(failures.value, 0)
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
