// The sleeve's one address type for both families, in memory: the layouts the socket takes,
// comparison as the hot path does it, and the text status shows.
import Glibc
import WeftMesh
import XCTest
@testable import WeftDatapath

final class UnderlayAddressTests: XCTestCase {
    func testBothFamiliesOnTheDualStackSocket() throws {
        let v4 = try XCTUnwrap(UnderlayAddress(ip: IPAddress("198.18.0.2")!, port: 6783, socketFamily: AF_INET6))
        XCTAssertEqual(Int32(v4.raw.sin6_family), AF_INET6, "IPv4 peers are ::ffff:a.b.c.d on the dual-stack socket")
        XCTAssertEqual(v4.text, "198.18.0.2:6783")
        XCTAssertEqual(v4.family, .ipv4)
        XCTAssertEqual(v4.ipv4Bytes, [198, 18, 0, 2])
        let v6 = try XCTUnwrap(UnderlayAddress(ip: IPAddress("fd00::5")!, port: 6783, socketFamily: AF_INET6))
        XCTAssertEqual(v6.text, "[fd00::5]:6783")
        XCTAssertEqual(v6.family, .ipv6)
        XCTAssertNil(v6.ipv4Bytes)
        XCTAssertFalse(v4.same(as: v6))
        XCTAssertTrue(v6.same(as: UnderlayAddress(ip: IPAddress("fd00:0::5")!, port: 6783, socketFamily: AF_INET6)!))
        XCTAssertFalse(v6.same(as: UnderlayAddress(ip: IPAddress("fd00::5")!, port: 6784, socketFamily: AF_INET6)!), "the port counts")
    }

    /// A host without IPv6 has an AF_INET socket: a sockaddr_in in the slot, and no way to IPv6 peers.
    func testIPv4OnlySocketLayout() throws {
        let v4 = try XCTUnwrap(UnderlayAddress(ip: IPAddress("198.18.0.2")!, port: 6783, socketFamily: AF_INET))
        let bytes = withUnsafeBytes(of: v4.raw) { Array($0) }
        var expected = sockaddr_in()
        expected.sin_family = sa_family_t(AF_INET)
        expected.sin_port = UInt16(6783).bigEndian
        inet_pton(AF_INET, "198.18.0.2", &expected.sin_addr)
        XCTAssertEqual(Array(bytes[0..<16]), withUnsafeBytes(of: expected) { Array($0) })
        XCTAssertTrue(bytes[16...].allSatisfy { $0 == 0 })
        XCTAssertEqual(v4.text, "198.18.0.2:6783")
        XCTAssertNil(UnderlayAddress(ip: IPAddress("fd00::5")!, port: 6783, socketFamily: AF_INET))
    }

    /// The session's payload limit follows the family of its link: 20 bytes less on IPv6.
    func testLinkPayloadFollowsTheFamily() throws {
        let keys = SessionKeys(txEpoch: 0, tx: nil, rx: [])
        let v4 = SleeveSession(peerShortId: 1, keys: keys, address: UnderlayAddress(ip: IPAddress("198.18.0.2")!, port: 6783, socketFamily: AF_INET6)!, underlayMTU: 1500)
        let v6 = SleeveSession(peerShortId: 2, keys: keys, address: UnderlayAddress(ip: IPAddress("fd00::2")!, port: 6783, socketFamily: AF_INET6)!, underlayMTU: 1500)
        XCTAssertEqual(v4.linkPayload, 1472)
        XCTAssertEqual(v6.linkPayload, 1452)
        XCTAssertEqual(v4.pathMTU, 1420)
        XCTAssertEqual(v6.pathMTU, 1400)
    }

    /// A peer that roams from IPv4 to IPv6 (learned from an authenticated packet): its limit
    /// follows the new family's header at once.
    func testLearningAnAddressOfTheOtherFamily() throws {
        let session = SleeveSession(peerShortId: 1, keys: SessionKeys(txEpoch: 0, tx: nil, rx: []),
                                    address: UnderlayAddress(ip: IPAddress("198.18.0.2")!, port: 6783, socketFamily: AF_INET6)!, underlayMTU: 1500)
        session.learn(UnderlayAddress(ip: IPAddress("fd00::2")!, port: 40000, socketFamily: AF_INET6)!)
        XCTAssertEqual(session.remoteAddressText, "[fd00::2]:40000")
        XCTAssertEqual(session.linkPayload, 1452)
        XCTAssertEqual(session.pathMTU, 1400)
        session.learn(UnderlayAddress(ip: IPAddress("fd00::2")!, port: 40001, socketFamily: AF_INET6)!)
        XCTAssertEqual(session.remoteAddressText, "[fd00::2]:40001", "a new port on the same family")
    }
}
