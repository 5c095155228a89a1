// Identity pins end to end (docs/protocol.md §3.10): in a line 1–2–3, router 1 learns router 3's
// key from gossip alone (1 and 3 cannot reach each other), shows it in `status peers --json` and
// pins it in <data-dir>/identity-pins.json, which survives a restart; a damaged pins file stops
// the launch and is left as it is.
import Foundation
import XCTest
import WeftControl
@testable import WeftRouter

final class IdentityPinTests: XCTestCase {
    private func pins(_ net: TestNet, _ index: Int) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: net.host(index).dataDir + "/identity-pins.json"))
        return try XCTUnwrap((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["pins"] as? [[String: Any]])
    }

    func testAKeyLearnedByGossipIsShownPinnedAndKeptAcrossARestart() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launchLine()
        XCTAssertTrue(net.waitUntil(timeout: 15) { (try? net.status(3).identity) != nil && (try? net.status(2).identity) != nil })
        let third = try net.status(3), second = try net.status(2)
        var peer3: PeerStatus?
        let learned = net.waitUntil(timeout: 30) {
            peer3 = try net.peers(1).first { $0.name == third.name }
            return peer3?.identity != nil
        }
        XCTAssertTrue(learned, "router 1 never showed router 3's key: \(String(describing: peer3))\n\(net.log(1))")
        XCTAssertEqual(peer3?.identity, third.identity, "the fingerprint router 3 shows for itself")
        XCTAssertEqual(peer3?.pinConflicts, [])
        XCTAssertNil(try net.connection(1, to: 3), "router 1 has no link to router 3: the key came by gossip")

        // Pinned, from gossip through router 2; the file is written by the tick after the first sight.
        var pin3: [String: Any]?
        let pinned = net.waitUntil(timeout: 5) {
            pin3 = try self.pins(net, 1).first { $0["name"] as? String == third.name }
            return pin3 != nil
        }
        XCTAssertTrue(pinned, "\(String(describing: try? pins(net, 1)))")
        XCTAssertEqual((pin3?["source"] as? String)?.hasPrefix("gossip from \(second.name)"), true, "\(String(describing: pin3))")
        XCTAssertEqual(LaunchInputs.fileMode(net.host(1).dataDir + "/identity-pins.json").map { $0 & 0o777 }, 0o600)
        let status = try net.status(1)
        XCTAssertEqual(status.pinnedIdentities, 3)
        XCTAssertEqual(status.pinConflicts, [])
        let text = try net.cli(1, ["status"]).output
        XCTAssertTrue(text.contains("Identity pins: 3 names pinned, no conflicts"), text)

        // A restart reads the pins back (the same first sight) and learns router 3 again without a conflict.
        net.kill(1, signal: SIGTERM)
        let before = try pins(net, 1)
        try net.launch(1, peers: [2])
        XCTAssertTrue(net.waitUntil(timeout: 30) { try net.peers(1).first { $0.name == third.name }?.identity == third.identity },
                      net.log(1))
        let after = try pins(net, 1)
        XCTAssertEqual(after.first { $0["name"] as? String == third.name }?["firstSeen"] as? String, pin3?["firstSeen"] as? String)
        XCTAssertEqual(after.count, before.count)
        XCTAssertEqual(try net.status(1).pinConflicts, [])
        XCTAssertFalse(net.log(1).contains("refused a claim"), net.log(1))
    }

    func testADamagedPinsFileStopsTheLaunchAndIsKept() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let path = net.host(1).dataDir + "/identity-pins.json"
        try FileManager.default.createDirectory(atPath: net.host(1).dataDir, withIntermediateDirectories: true)
        let damaged = Data(#"{"format":1,"pins":[{"name":"02:00"#.utf8)
        try damaged.write(to: URL(fileURLWithPath: path))
        let refused = try net.launch(1)
        refused.waitUntilExit()
        // Like a damaged ipam.json (LaunchValidationTests): the router stops before it listens.
        XCTAssertNotEqual(refused.terminationStatus, 0, net.log(1))
        XCTAssertTrue(net.log(1).contains("\(path) is not Weft's identity pins") && net.log(1).contains("move it away"), net.log(1))
        XCTAssertEqual(FileManager.default.contents(atPath: path), damaged, "never overwritten")
    }
}
