// SIGHUP re-reads --trusted-subnets-file and the keyring: trust added waits for the next
// handshake (and status says so), trust withdrawn re-handshakes the link encrypted at once.
import Foundation
import WeftControl
import XCTest
@testable import WeftRouter

final class ReloadTests: XCTestCase {
    private func established(_ net: TestNet, _ index: Int) -> [ConnectionStatus] {
        ((try? net.connections(index)) ?? []).filter { $0.state == .established }
    }

    /// Routers 1 and 2, each with a trusted-subnets file holding `trusted`, connected to each
    /// other. Returns the two files.
    private func launchPair(_ net: TestNet, trusting trusted: String) throws -> [String] {
        let files = [1, 2].map { "\(net.directory)/trusted-\($0)" }
        for file in files { try trusted.write(toFile: file, atomically: true, encoding: .utf8) }
        try net.launch(1, extraArgs: ["--trusted-subnets-file", files[0]])
        try net.launch(2, peers: [1], extraArgs: ["--trusted-subnets-file", files[1]])
        XCTAssertTrue(net.waitUntil(timeout: 15) { established(net, 1).count == 1 && established(net, 2).count == 1 })
        return files
    }

    private func hangUp(_ net: TestNet, _ index: Int) throws {
        let process = try XCTUnwrap(net.router(index))
        XCTAssertTrue(process.isRunning)
        XCTAssertEqual(kill(process.processIdentifier, SIGHUP), 0)
    }

    /// Two routers that do not trust each other connect encrypted. Both trust files then name
    /// the underlay and get SIGHUP: each logs the new subnet, the link stays up with the same
    /// connectionId and mode, and `weft status` shows the new list. A malformed keyring on
    /// SIGHUP is logged and ignored. A new handshake after the reload is trusted.
    func testSighupReloadsTrustAndKeyringWithoutReconnecting() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        let files = try launchPair(net, trusting: "# nothing trusted yet\n10.99.0.0/16\n")
        let before = try XCTUnwrap(established(net, 1).first)
        XCTAssertTrue(before.encrypted)
        XCTAssertFalse(before.trusted)
        let id = try XCTUnwrap(before.connectionId)
        let id2 = try XCTUnwrap(established(net, 2).first?.connectionId)

        for file in files { try "10.99.0.0/16, 198.18.0.0/24\n".write(toFile: file, atomically: true, encoding: .utf8) }
        try hangUp(net, 1)
        try hangUp(net, 2)
        for index in 1...2 {
            XCTAssertTrue(net.waitUntil(timeout: 5) { net.log(index).contains("msg=\"trusted subnet added\" ") && net.log(index).contains("subnet=198.18.0.0/24") },
                          "host \(index): \(net.log(index))")
            XCTAssertTrue(net.waitUntil(timeout: 5) { net.log(index).contains("msg=\"reload done\" changes=1") }, net.log(index))
            let status = try net.cli(index, ["status", "--json"])
            XCTAssertEqual(status.status, 0, status.output)
            XCTAssertTrue(status.output.contains("198.18.0.0\\/24") || status.output.contains("198.18.0.0/24"), status.output)
            let list = try net.cli(index, ["password", "list"])
            XCTAssertEqual(list.status, 0, list.output)
        }
        usleep(1_500_000)
        let after = try XCTUnwrap(established(net, 1).first)
        XCTAssertEqual(after.connectionId, id, "the link reconnected")
        XCTAssertTrue(after.encrypted, "an established link keeps its mode until it reconnects")
        XCTAssertEqual(after.reason, Router.trustPendingReason, "status says the added trust waits for a handshake")
        XCTAssertEqual(established(net, 2).first?.connectionId, id2)
        XCTAssertFalse(net.log(1).contains("msg=\"connection closed\""), net.log(1))

        // A malformed keyring: logged, the old one stays, the router and its link stay up.
        let keyringPath = "\(net.host(1).dataDir)/keyring.json"
        let good = try String(contentsOfFile: keyringPath, encoding: .utf8)
        try "{ not a keyring".write(toFile: keyringPath, atomically: true, encoding: .utf8)
        try hangUp(net, 1)
        XCTAssertTrue(net.waitUntil(timeout: 5) { net.log(1).contains("msg=\"keyring not reloaded; keeping the previous one\"") }, net.log(1))
        XCTAssertTrue(net.log(1).contains("level=error msg=\"keyring not reloaded"), net.log(1))
        XCTAssertTrue(try XCTUnwrap(net.router(1)).isRunning)
        let list = try net.cli(1, ["password", "list", "--json"])
        XCTAssertEqual(list.status, 0, list.output)
        XCTAssertTrue(list.output.contains(try XCTUnwrap(before.pskId)), list.output)
        XCTAssertEqual(established(net, 1).first?.connectionId, id)
        try good.write(toFile: keyringPath, atomically: true, encoding: .utf8)

        // New handshakes use the reloaded list: router 2 restarts and both ends now trust.
        net.kill(2, signal: SIGTERM)
        try net.launch(2, peers: [1], extraArgs: ["--trusted-subnets-file", files[1]])
        XCTAssertTrue(net.waitUntil(timeout: 15) { established(net, 1).first.map { $0.connectionId != id } == true })
        let fresh = try XCTUnwrap(established(net, 1).first)
        XCTAssertTrue(fresh.trusted, "\(fresh)")
    }

    /// Two routers that trust each other run in clear; one drops the underlay from its trust
    /// file and gets SIGHUP: within 5 s the link has re-handshaked encrypted, with a log line.
    func testWithdrawnTrustRehandshakesEncryptedWithinFiveSeconds() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        let files = try launchPair(net, trusting: "198.18.0.0/24\n")
        let before = try XCTUnwrap(established(net, 1).first)
        XCTAssertTrue(before.trusted && !before.encrypted, "\(before)")

        try "# 198.18.0.0/24 no longer trusted\n".write(toFile: files[0], atomically: true, encoding: .utf8)
        let start = Date()
        try hangUp(net, 1)
        let encrypted = net.waitUntil(timeout: 5) {
            [1, 2].allSatisfy { index in
                let links = self.established(net, index)
                return links.count == 1 && links[0].encrypted && !links[0].trusted
                    && (index == 2 || links[0].connectionId != before.connectionId)
            }
        }
        XCTAssertTrue(encrypted, "after \(Date().timeIntervalSince(start)) s: \(established(net, 1)) \(established(net, 2))\n\(net.log(1))")
        XCTAssertTrue(net.log(1).contains("trust withdrawn by reload: re-handshaking the link so that it is encrypted"), net.log(1))
        // The gossip follows: router 2's topology has router 1's report of the new link too, so
        // it shows it encrypted with both ends agreeing (either end saying clear would show clear).
        var link: TopologyLink?
        let gossiped = net.waitUntil(timeout: 5) {
            let result = try net.cli(2, ["status", "topology", "--json"])
            link = try JSONDecoder().decode(TopologyStatus.self, from: Data(result.output.utf8)).links.first
            return link?.encrypted == true && link?.ends == nil && link?.state == .established
        }
        XCTAssertTrue(gossiped, "\(String(describing: link))\n\(net.log(2))")
    }
}
