// A peer that cannot be dialed, as the operator sees it: the reason in plain words in status, one
// log line when the target starts failing and one when it connects again, no SwiftNIO dump.
import Foundation
import WeftControl
import XCTest

final class DialFailureTests: XCTestCase {
    func testFailingTargetIsWordedAndLoggedOnceThenRecovered() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        let unroutable = "10.55.0.77"
        try Shell.run(["ip", "-n", net.host(1).namespace, "route", "add", "unreachable", "\(unroutable)/32"])
        try net.launch(1, peers: [2], peerAddresses: [unroutable])
        let down = "\(net.host(2).address):6783"
        func reason(_ address: String) throws -> String? {
            try net.connections(1).first { $0.address == address }?.reason
        }
        let failing = net.waitUntil(timeout: 15) {
            let unroutableReason = try reason("\(unroutable):6783") ?? ""
            let downReason = try reason(down) ?? ""
            return unroutableReason.contains("cannot connect to \(unroutable):6783: no route to host") && downReason.contains("connection refused")
        }
        XCTAssertTrue(failing, "\((try? net.connections(1)) ?? [])")
        let text = try XCTUnwrap(try reason("\(unroutable):6783"))
        XCTAssertTrue(text.contains("(retrying in ") || text.hasPrefix("connecting now (last attempt: "), text)
        Thread.sleep(forTimeInterval: 4)  // attempts 2 and 3 (backoff 1 s, 2 s) fail too
        let log = net.log(1)
        XCTAssertEqual(log.components(separatedBy: "cannot connect to \(unroutable):6783: no route to host (retrying in").count - 1, 1, log)
        XCTAssertEqual(log.components(separatedBy: "cannot connect to \(down): connection refused").count - 1, 1, log)
        XCTAssertFalse(log.contains("SingleConnectionFailure") || log.contains("NIOConnectionError"), log)

        try net.launch(2)
        XCTAssertTrue(net.waitUntil(timeout: 20) { try net.connection(1, to: 2) != nil }, net.log(1))
        XCTAssertTrue(net.waitUntil(timeout: 5) { net.log(1).contains("connected to \(down) again after") }, net.log(1))
    }

    /// A failing target whose peer dials this router first recovers with it: one line saying
    /// so, and status no longer shows the target retrying. Host 1's own dials to host 2 are
    /// reset by a firewall rule in host 1, so only host 2's dial can make the link.
    func testFailingTargetRecoversWhenItsPeerDialsIn() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        let ns = net.host(1).namespace, peer = net.host(2).address
        try Shell.run(["ip", "netns", "exec", ns, "nft", "add table inet weft_test; add chain inet weft_test out { type filter hook output priority 0; }; "
                       + "add rule inet weft_test out ip daddr \(peer) tcp dport 6783 reject with tcp reset"])
        try net.launch(1, peers: [2])
        let target = "\(peer):6783"
        XCTAssertTrue(net.waitUntil(timeout: 15) { net.log(1).contains("cannot connect to \(target): connection refused (retrying in") }, net.log(1))
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 20) { try net.connection(1, to: 2)?.state == .established }, net.log(1))
        XCTAssertTrue(net.waitUntil(timeout: 5) { net.log(1).contains("\(target) recovered: its peer connected to this router after") }, net.log(1))
        Thread.sleep(forTimeInterval: 3)
        let log = net.log(1)
        XCTAssertEqual(log.components(separatedBy: "recovered: its peer connected").count - 1, 1, log)
        XCTAssertFalse(log.contains("connected to \(target) again"), "host 1 cannot have dialed it: \(log)")
        let connections = try net.connections(1)
        XCTAssertEqual(connections.count, 1, "the target is the inbound link now, not a second entry: \(connections)")
        XCTAssertEqual(connections.first?.direction, .inbound, "\(connections)")
    }
}
