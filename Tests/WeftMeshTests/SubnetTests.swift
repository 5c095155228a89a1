import XCTest
@testable import WeftMesh

final class SubnetTests: XCTestCase {
    func testContainsIPv4AndIPv6() throws {
        let net = try Subnet("10.1.0.0/16")
        XCTAssertTrue(net.contains(IPAddress("10.1.200.3")!))
        XCTAssertFalse(net.contains(IPAddress("10.2.0.1")!))
        let odd = try Subnet("192.168.3.128/25")
        XCTAssertTrue(odd.contains(IPAddress("192.168.3.200")!))
        XCTAssertFalse(odd.contains(IPAddress("192.168.3.127")!))
        let v6 = try Subnet("fd00:1::/32")
        XCTAssertTrue(v6.contains(IPAddress("fd00:1:ffff::1")!))
        XCTAssertFalse(v6.contains(IPAddress("fd00:2::1")!))
        XCTAssertFalse(v6.contains(IPAddress("10.1.0.1")!))
        XCTAssertTrue(try Subnet("0.0.0.0/0").contains(IPAddress("203.0.113.9")!))
        XCTAssertFalse(try Subnet("0.0.0.0/0").contains(IPAddress("::1")!))
    }

    func testMalformedRangesAreRejectedWithTheText() {
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0.300/8", "fd00::/129", "/8", "10.0.0.0/-1", "abc/8", ""] {
            XCTAssertThrowsError(try Subnet(bad), bad) { error in
                XCTAssertTrue("\(error)".contains("'\(bad)'"), "\(error)")
            }
        }
        XCTAssertEqual(try Subnet.parseList("10.0.0.0/8, 192.168.0.0/16").count, 2)
        XCTAssertThrowsError(try Subnet.parseList("10.0.0.0/8,bogus"))
    }

    /// An address with a prefix is not a range: refused, naming the network it lies in.
    func testHostBitsSetAreRefusedWithTheNetwork() {
        for (text, network) in [("10.66.0.5/24", "10.66.0.0/24"), ("fd00::1/64", "fd00::/64"), ("192.168.3.129/25", "192.168.3.128/25")] {
            XCTAssertThrowsError(try Subnet(text), text) { error in
                XCTAssertEqual(error as? Subnet.ParseError, .hostBitsSet(text, network: network))
                XCTAssertEqual("\(error)", "'\(text)' has host bits set: did you mean \(network)?")
            }
        }
        XCTAssertNoThrow(try Subnet("10.66.0.5/32"))
    }

    func testTrustIsMutualAndEncryptionFollowsIt() {
        XCTAssertTrue(LinkPolicy.trusted(localTrustsRemote: true, remoteTrustsLocal: true))
        XCTAssertFalse(LinkPolicy.trusted(localTrustsRemote: true, remoteTrustsLocal: false))
        XCTAssertFalse(LinkPolicy.trusted(localTrustsRemote: false, remoteTrustsLocal: true))
        XCTAssertTrue(LinkPolicy.encrypted(passwordSet: true, trusted: false))
        XCTAssertFalse(LinkPolicy.encrypted(passwordSet: true, trusted: true))
        XCTAssertFalse(LinkPolicy.encrypted(passwordSet: false, trusted: false))
    }
}

final class DurationTextTests: XCTestCase {
    func testOperatorDurations() throws {
        XCTAssertEqual(try DurationText.seconds("30s"), 30)
        XCTAssertEqual(try DurationText.seconds("10m"), 600)
        XCTAssertEqual(try DurationText.seconds("1h30m"), 5400)
        XCTAssertEqual(try DurationText.seconds("90"), 90)
        XCTAssertEqual(try DurationText.seconds("1.5s"), 1.5)
        for bad in ["", "s", "10x", "1h30", "-5", "m10"] {
            XCTAssertThrowsError(try DurationText.seconds(bad), bad)
        }
    }
}
