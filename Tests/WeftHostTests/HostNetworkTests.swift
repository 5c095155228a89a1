// The pieces of host plumbing the router checks before it touches the system, in memory (no
// privileges).
import WeftWire
import XCTest
@testable import WeftHost

final class HostNetworkTests: XCTestCase {
    /// No privileges needed: the pieces the router checks before it touches the system.
    func testCIDRValidationHostNamesAndOverhead() throws {
        XCTAssertEqual(try HostNetwork.canonicalCIDR("10.47.0.1/24"), "10.47.0.1/24")
        XCTAssertEqual(try HostNetwork.canonicalCIDR("FD00:0::1/64"), "fd00::1/64")
        for bad in ["10.47.0.1", "10.47.0.1/", "10.47.0.1/33", "10.47.0.300/24", "fd00::1/129", "::ffff:1.2.3.4/64", "x/8", "1.2.3.4/+4"] {
            XCTAssertThrowsError(try HostNetwork.canonicalCIDR(bad)) { XCTAssertTrue("\($0)".contains(bad), "\($0)") }
        }
        let name = HostNetwork.hostIfname(namespaceInode: 4026532000, ifname: "ethwe")
        XCTAssertTrue(name.hasPrefix("weftv") && name.count == 13 && name.dropFirst(5).allSatisfy(\.isHexDigit), name)
        XCTAssertEqual(name, HostNetwork.hostIfname(namespaceInode: 4026532000, ifname: "ethwe"))
        XCTAssertNotEqual(name, HostNetwork.hostIfname(namespaceInode: 4026532001, ifname: "ethwe"))
        XCTAssertNotEqual(name, HostNetwork.hostIfname(namespaceInode: 4026532000, ifname: "eth1"))
        XCTAssertTrue(HostNetwork.isLinkLocal("169.254.3.4/16") && HostNetwork.isLinkLocal("fe80::1/64"))
        XCTAssertFalse(HostNetwork.isLinkLocal("198.18.0.1/24") || HostNetwork.isLinkLocal("fd00::1/64"))
        XCTAssertEqual(Overhead.sleeveIPv4, 20 + 8 + 16 + 16 + 6 + 14)
    }

    func testUnderlayRuleSkipsLoopbackWeftDownAndLinkLocalOnly() {
        XCTAssertTrue(HostNetwork.carriesUnderlay(name: "eth0", isUp: true, addresses: { ["198.18.0.1/24"] }))
        XCTAssertFalse(HostNetwork.carriesUnderlay(name: "eth0", isUp: false, addresses: { ["198.18.0.1/24"] }))
        XCTAssertFalse(HostNetwork.carriesUnderlay(name: "lo", isUp: true, addresses: { ["127.0.0.1/8"] }))
        XCTAssertFalse(HostNetwork.carriesUnderlay(name: WeftInterfaces.bridge, isUp: true, addresses: { ["10.47.0.1/16"] }))
        XCTAssertFalse(HostNetwork.carriesUnderlay(name: "eth1", isUp: true, addresses: { ["fe80::1/64", "169.254.1.1/16"] }))
        XCTAssertFalse(HostNetwork.carriesUnderlay(name: "eth2", isUp: true, addresses: { nil }))
    }

    /// The overlay MTU makes room for IPv6's 40-byte header when any underlay link has a
    /// routable IPv6 address; link-local IPv6 (every veth has one) does not count.
    func testUnderlayFamilyAndItsOverheads() {
        XCTAssertEqual(HostNetwork.underlayFamily(addresses: ["198.18.0.1/24", "fe80::1/64"]), .ipv4)
        XCTAssertEqual(HostNetwork.underlayFamily(addresses: ["fd00::1/64"]), .ipv6)
        XCTAssertEqual(HostNetwork.underlayFamily(addresses: ["198.18.0.1/24", "2001:db8::1/64"]), .ipv6)
        XCTAssertEqual(HostNetwork.underlayFamily(addresses: []), .ipv4)
        XCTAssertEqual(UnderlayFamily.ipv6.sleeveOverhead, 40 + 8 + 16 + 16 + 6 + 14)
        XCTAssertEqual(UnderlayFamily.ipv6.fastdpOverhead, 70)
        XCTAssertEqual(Sleeve.overlayMTU(underlayMTU: 1500, family: .ipv6), 1400)
        XCTAssertEqual(Sleeve.overlayMTU(underlayMTU: 1280, family: .ipv6), 1180)
        XCTAssertEqual(Sleeve.overlayMTU(underlayMTU: 1500, family: .ipv4), 1420)
    }
}
