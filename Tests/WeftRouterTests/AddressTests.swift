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
        XCTAssertNotNil(PeerAddress.problem(address))
        XCTAssertNil(PeerAddress.problem("[fd00::1]:65535"))
    }

    func testPeerAddressesThatAreNeitherIPNorHostNameAreRefused() {
        for good in ["198.18.0.1", "198.18.0.1:7000", "host-b", "host-b.example.com:6783", "example.com.", "fd00::1",
                     "[fd00::1]", "[fd00::1]:9", "xn--bcher-kva.example", "a1"] {
            XCTAssertNil(PeerAddress.problem(good), good)
        }
        let refused: [(String, String)] = [
            ("10.55.0.999", "four numbers of 0–255"), ("bad:port:x", "[ADDRESS]:PORT"), ("host_name", "letters, digits and '-'"),
            ("host:0", "no valid port"), ("host:http", "no valid port"), ("[fd00::zz]:9", "not an IPv6 address"),
            ("-host", "starts or ends with '-'"), ("a..b", "empty label"), ("", "empty peer address"),
            ("1.2.3", "never ends in a number"), (String(repeating: "a", count: 64) + ".com", "longer than 63"),
        ]
        for (bad, reason) in refused {
            let problem = PeerAddress.problem(bad)
            XCTAssertTrue(problem?.contains(reason) == true, "\(bad): \(problem ?? "accepted")")
            if !bad.isEmpty { XCTAssertTrue(problem?.contains(bad) == true || problem?.contains("fd00::zz") == true, "names the input: \(problem ?? "")") }
        }
    }

    func testTokenBucketLimitsBursts() {
        let start = NIODeadline.now()
        var bucket = TokenBucket(tokens: TokenBucket.capacity, last: start)
        let granted = (0..<100).filter { _ in bucket.take(now: start) }.count
        XCTAssertEqual(granted, Int(TokenBucket.capacity))
        XCTAssertTrue(bucket.take(now: start + .milliseconds(100)), "tokens refill over time")
    }
}
