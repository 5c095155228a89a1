import Foundation
import XCTest
@testable import WeftNetlink

final class TapDeviceTests: XCTestCase {
    /// A broadcast ARP request from 02:00:00:00:00:01 asking for 10.32.0.9 (60 bytes, padded).
    let frame: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06,
                          0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
                          0x02, 0, 0, 0, 0, 0x01, 10, 32, 0, 5,
                          0, 0, 0, 0, 0, 0, 10, 32, 0, 9] + [UInt8](repeating: 0, count: 18)

    func rxPackets(_ ns: TestNamespace, _ name: String) throws -> Int {
        let json = try ip("-n", ns.name, "-s", "-j", "link", "show", name)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
        let stats = parsed?.first?["stats64"] as? [String: Any]
        let rx = stats?["rx"] as? [String: Any]
        return (rx?["packets"] as? Int) ?? -1
    }

    func testTapInNamespaceIsTunKindAndAcceptsFrames() throws {
        try withNamespaces(1) { ns in
            let before = currentThreadNamespace()
            let tap = try NetworkNamespace.perform(inNamespaceFd: ns[0].fd) {
                try TapDevice.open(name: "weftap", vnetHeader: false)
            }
            defer { tap.close() }
            XCTAssertEqual(currentThreadNamespace(), before)
            XCTAssertEqual(tap.name, "weftap")
            XCTAssertTrue(try ip("-n", ns[0].name, "link", "show", "weftap").contains("weftap"))

            let nl = ns[0].netlink
            let link = try XCTUnwrap(nl.link(named: "weftap"))
            XCTAssertEqual(link.kind, "tun")
            XCTAssertEqual(link.mac.count, 6)
            try nl.createBridge(name: "weft", mac: [0x02, 0x57, 0x45, 0x46, 0x54, 0x01], mtu: 1376)
            try nl.setMTU("weftap", 1376)
            try nl.setMaster("weftap", master: "weft")
            try nl.setUp("weftap", true)
            try nl.setUp("weft", true)
            XCTAssertEqual(try nl.link(named: "weftap")?.masterIndex, try nl.link(named: "weft")?.index)

            let rxBefore = try rxPackets(ns[0], "weftap")
            let written = frame.withUnsafeBytes { write(tap.fd, $0.baseAddress, $0.count) }
            XCTAssertEqual(written, frame.count, "write: \(String(cString: strerror(errno)))")
            XCTAssertEqual(try rxPackets(ns[0], "weftap"), rxBefore + 1)
        }
    }

    func testTapWithVnetHeaderAndDisappearsOnClose() throws {
        try withNamespaces(1) { ns in
            let tap = try NetworkNamespace.perform(inNamespaceFd: ns[0].fd) {
                try TapDevice.open(name: "weftvh", vnetHeader: true)
            }
            var closed = false
            defer { if !closed { tap.close() } }
            try ns[0].netlink.setUp("weftvh", true)
            // A 10-byte virtio_net_hdr (no flags, GSO_NONE) before the frame.
            let packet = [UInt8](repeating: 0, count: 10) + frame
            let written = packet.withUnsafeBytes { write(tap.fd, $0.baseAddress, $0.count) }
            XCTAssertEqual(written, packet.count)
            XCTAssertEqual(try rxPackets(ns[0], "weftvh"), 1)

            tap.close()
            closed = true
            XCTAssertNil(try ns[0].netlink.link(named: "weftvh"), "a non-persistent TAP goes with its fd")
        }
    }

    func testTapNameChecks() throws {
        try withNamespaces(1) { ns in
            XCTAssertThrowsError(try NetworkNamespace.perform(inNamespaceFd: ns[0].fd) {
                try TapDevice.open(name: "a-very-long-tap-name", vnetHeader: false)
            }) { error in
                XCTAssertTrue("\(error)".contains("at most 15"), "\(error)")
            }
            // The kernel picks a name when none is given.
            let tap = try NetworkNamespace.perform(inNamespaceFd: ns[0].fd) {
                try TapDevice.open(name: "", vnetHeader: false)
            }
            defer { tap.close() }
            XCTAssertTrue(tap.name.hasPrefix("tap"), tap.name)
            XCTAssertEqual(try ns[0].netlink.link(named: tap.name)?.kind, "tun")
        }
    }
}
