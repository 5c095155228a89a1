// Address handling of the router, in memory (no privileges).
import Foundation
import NIOCore
import WeftTestSupport
import XCTest
@testable import WeftRouter

final class AddressTests: XCTestCase {
    func testNormalizeAddsTheDefaultPort() {
        XCTAssertEqual(Router.normalize("198.18.0.1", defaultPort: 6783), "198.18.0.1:6783")
        XCTAssertEqual(Router.normalize("198.18.0.1:7000", defaultPort: 6783), "198.18.0.1:7000")
        XCTAssertEqual(Router.normalize("host-b", defaultPort: 6783), "host-b:6783")
        XCTAssertEqual(Router.normalize("fd00::1", defaultPort: 6783), "[fd00::1]:6783")
        XCTAssertEqual(Router.normalize("[fd00::1]", defaultPort: 6783), "[fd00::1]:6783")
        XCTAssertEqual(Router.normalize("[fd00::1]:9", defaultPort: 6783), "[fd00::1]:9")
    }

    func testSplitRejectsBadPorts() {
        XCTAssertEqual(Router.split("198.18.0.1:6783")?.host, "198.18.0.1")
        XCTAssertEqual(Router.split("[fd00::1]:9")?.host, "fd00::1")
        XCTAssertEqual(Router.split("[fd00::1]:9")?.port, 9)
        XCTAssertNil(Router.split("198.18.0.1:0"))
        XCTAssertNil(Router.split("198.18.0.1:70000"))
        XCTAssertNil(Router.split("198.18.0.1:http"))
        XCTAssertNil(Router.split("[fd00::1]"))
        XCTAssertNil(Router.split("[fd00::1]:0"))
        XCTAssertNil(Router.split("[fd00::1]:65536"))
    }

    /// The fuzz input (Tests/Fuzz/regressions/control) whose `weft connect '[fd00::1]:99999'`
    /// the control API accepted: a bracketed address needs a port in 1…65535 too.
    func testControlAPIRefusesABracketedAddressWithAPortOutOfRange() throws {
        let body = try FuzzRegressions.input("control", "bracketed-port-out-of-range").dropFirst()
        let address = try JSONDecoder().decode(AddressRequest.self, from: Data(body)).address
        XCTAssertEqual(address, "[fd00::1]:99999")
        XCTAssertFalse(RouterControlDelegate.isDialable(address))
        XCTAssertTrue(RouterControlDelegate.isDialable("[fd00::1]:65535"))
    }

    func testTokenBucketLimitsBursts() {
        let start = NIODeadline.now()
        var bucket = TokenBucket(tokens: TokenBucket.capacity, last: start)
        let granted = (0..<100).filter { _ in bucket.take(now: start) }.count
        XCTAssertEqual(granted, Int(TokenBucket.capacity))
        XCTAssertTrue(bucket.take(now: start + .milliseconds(100)), "tokens refill over time")
    }
}
