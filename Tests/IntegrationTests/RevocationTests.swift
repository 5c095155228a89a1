// `weft revoke` end to end (docs/protocol.md §3.11, docs/operations.md "Evicting a host"): in a
// mesh of four, router 1 revokes router 4; within 10 s every router's links to router 4 are
// closed and router 4 shows REFUSE 13's reason; 200 pings a second between workloads on routers
// 2 and 3 lose nothing meanwhile; the mesh moves to a new password that router 4 never gets;
// router 3 lists the record; router 2 keeps it across a restart; router 4 relaunched with its
// data dir stays refused, and relaunched with a fresh data dir (a new identity key) and the old
// password, inside the grace, is refused by every router with REFUSE 14.
import Foundation
import XCTest
import WeftControl
@testable import WeftRouter

final class RevocationTests: XCTestCase {
    private func established(_ net: TestNet, _ index: Int) -> [ConnectionStatus] {
        ((try? net.connections(index)) ?? []).filter { $0.state == .established }
    }

    /// Host 4's connection to host `index` was refused with REFUSE 14's reason.
    private func refusedAsUnknownUnderRetiringPassword(_ net: TestNet, to index: Int) -> Bool {
        ((try? net.connections(4)) ?? []).contains {
            $0.address.hasPrefix(net.host(index).address) && $0.state == .failed
                && $0.reason?.contains("this password is being retired; join with the current one (your identity") == true
        }
    }

    private func refusedAsRevoked(_ net: TestNet, _ index: Int) -> Bool {
        ((try? net.connections(index)) ?? []).contains { $0.reason?.contains("is revoked in this mesh") == true }
    }

    /// `weft revoke --list --json` of host `index`; nil while its router does not answer.
    private func revocations(_ net: TestNet, _ index: Int) throws -> [RevocationStatus]? {
        let r = try net.cli(index, ["revoke", "--list", "--json"])
        guard r.status == 0 else { return nil }
        return try JSONDecoder().decode([RevocationStatus].self, from: Data(r.output.utf8))
    }

    func testRevokedRouterIsClosedOutEverywhereAndStaysOut() throws {
        try requireRoot()
        let net = try TestNet(hosts: 4)
        defer { net.cleanup() }
        try net.launchStar(4)
        for index in 1...4 { XCTAssertTrue(net.sleeveReady(index, peers: 3), "host \(index): \(established(net, index).count) links\n\(net.log(index))") }
        let fourth = try net.status(4), first = try net.status(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.peers(1).first { $0.name == fourth.name }?.identity == fourth.identity })
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        _ = try net.attachWorkload(3, "10.47.0.3/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w2, "10.47.0.3", count: 1).status == 0 })

        // Own router and unknown peers are refused (exit 1), nothing is revoked.
        XCTAssertEqual(try net.cli(1, ["revoke", first.name]).status, 1)
        XCTAssertEqual(try net.cli(1, ["revoke", "no-such-router"]).status, 1)
        XCTAssertEqual(try net.cli(1, ["revoke"]).status, 2)
        XCTAssertEqual(try revocations(net, 1), [])

        let pingLog = "\(net.directory)/ping.log"
        let ping = try net.startBackground(namespace: w2, ["ping", "-i", "0.005", "-c", "2400", "-W", "1", "10.47.0.3"], output: pingLog)
        usleep(1_000_000)
        let started = Date()
        // A grace long enough that the old password is still accepted (from pinned keys) at the end.
        let revoke = try net.cli(1, ["revoke", net.nickname(4), "--grace", "10m"])
        XCTAssertEqual(revoke.status, 0, revoke.output + net.log(1))
        XCTAssertTrue(revoke.output.contains("revoked \(fourth.name) (\(net.nickname(4))), identity \(fourth.identity ?? "?")"), revoke.output)
        XCTAssertTrue(revoke.output.contains("new password id"), revoke.output)
        XCTAssertFalse(revoke.output.contains("NOT acknowledged"), "router 4 is neither awaited nor reported: \(revoke.output)")

        // Within 10 s no router holds a link to router 4, and router 4 reads REFUSE 13's reason.
        let closed = net.waitUntil(timeout: 10) {
            (1...3).allSatisfy { (try? net.connection($0, to: 4)) == nil } && established(net, 4).isEmpty && refusedAsRevoked(net, 4)
        }
        let took = Date().timeIntervalSince(started)
        XCTAssertTrue(closed, "after \(took) s: " + (1...4).map { "\($0): \(established(net, $0).map { $0.nickname ?? "?" })" }.joined(separator: "; ")
                      + "\n\(net.log(4).suffix(3000))")
        print("revocation: links to router 4 closed everywhere within \(String(format: "%.2f", took)) s")
        // Its entry stays until the unreachable grace (25 s) and is shown as revoked meanwhile.
        let peer4 = try XCTUnwrap(try net.peers(2).first { $0.name == fourth.name })
        XCTAssertTrue(peer4.revoked, "router 2 shows router 4 as revoked")
        XCTAssertFalse(try XCTUnwrap(try net.peers(2).first { $0.name == first.name }).revoked)
        XCTAssertTrue(try net.cli(2, ["status", "peers"]).output.contains("revoked"))

        XCTAssertTrue(net.waitUntil(timeout: 20) { !ping.isRunning })
        let pingOutput = (try? String(contentsOfFile: pingLog, encoding: .utf8)) ?? ""
        XCTAssertTrue(pingOutput.contains("2400 packets transmitted, 2400 received"), "packets were lost:\n\(pingOutput.suffix(400))")

        // The new password reached routers 1–3, never router 4.
        let newId = try XCTUnwrap(established(net, 1).first?.activePskId ?? established(net, 1).first?.pskId)
        let keyring4 = try net.cli(4, ["password", "list", "--json"])
        XCTAssertFalse(keyring4.output.contains(newId), "router 4 learned the new password: \(keyring4.output)")
        XCTAssertTrue(try net.cli(2, ["password", "list", "--json"]).output.contains(newId))

        // Router 3 lists the record: name, nickname, fingerprint, who revoked it.
        let listed = try XCTUnwrap(revocations(net, 3))
        XCTAssertEqual(listed.map(\.name), [fourth.name])
        XCTAssertEqual(listed.first?.identity, fourth.identity)
        XCTAssertEqual(listed.first?.nickname, net.nickname(4))
        XCTAssertEqual(listed.first?.revokedBy, first.name)
        XCTAssertTrue(net.log(3).contains("identity revoked"), net.log(3))

        // Router 2 keeps it across a restart.
        net.kill(2, signal: SIGTERM)
        let file = net.host(2).dataDir + "/revocations.json"
        XCTAssertEqual(LaunchInputs.fileMode(file).map { $0 & 0o777 }, 0o600)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 10) { (try? self.revocations(net, 2))??.map(\.name) == [fourth.name] }, net.log(2))
        XCTAssertTrue(net.log(2).contains("revocations loaded"), net.log(2))

        // Router 4 relaunched with its data dir (still holding the old password, inside its grace) stays refused.
        net.kill(4, signal: SIGTERM)
        try net.launch(4, peers: [1, 2])
        XCTAssertTrue(net.waitUntil(timeout: 20) { refusedAsRevoked(net, 4) }, "\((try? net.connections(4)) ?? [])")
        usleep(3_000_000)
        XCTAssertTrue(established(net, 4).isEmpty, "\(established(net, 4))")
        for index in 1...3 { XCTAssertNil(try net.connection(index, to: 4), "host \(index)") }

        // Router 4 relaunched with a fresh data dir (a new key, so a new name) and the old password,
        // which routers 1–3 still accept during the grace, but only from keys pinned before: every
        // router it dials refuses it with REFUSE 14, whose reason its own status shows.
        net.kill(4, signal: SIGTERM)
        let dataDir4 = net.host(4).dataDir
        try FileManager.default.moveItem(atPath: dataDir4, toPath: dataDir4 + ".revoked")
        let relaunched = Date()
        try net.launch(4, peers: [1, 2, 3])
        XCTAssertTrue(net.waitUntil(timeout: 10) { (try? net.status(4).name).map { $0 != fourth.name } == true }, net.log(4))
        let fresh = try net.status(4)
        XCTAssertNotEqual(fresh.identity, fourth.identity)
        let refused = net.waitUntil(timeout: 20) { (1...3).allSatisfy { self.refusedAsUnknownUnderRetiringPassword(net, to: $0) } }
        XCTAssertTrue(refused, "\((try? net.connections(4)) ?? [])\n\(net.log(1).suffix(2000))")
        print("revocation: fresh key under the old password refused by routers 1-3 within "
              + "\(String(format: "%.2f", Date().timeIntervalSince(relaunched))) s of its launch")
        for index in 1...3 { XCTAssertTrue(net.log(index).contains("this password is being retired"), "host \(index) logs the refusal") }
        XCTAssertTrue(established(net, 4).isEmpty, "\(established(net, 4))")
        for index in 1...3 {
            XCTAssertNil(try net.connection(index, to: 4), "host \(index)")
            XCTAssertFalse(try net.peers(index).contains { $0.name == fresh.name }, "host \(index) never admitted the fresh key")
        }
        // The mark came with PASSWORD_USE to routers 2 and 3 and is in their keyrings (router 2's
        // across its restart).
        for index in 2...3 {
            let keyring = try String(contentsOfFile: net.host(index).dataDir + "/keyring.json", encoding: .utf8)
            XCTAssertTrue(keyring.contains("\"pinnedOnly\" : true"), "host \(index): \(keyring)")
        }
    }
}
