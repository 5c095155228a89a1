// A router's identity key end to end (docs/protocol.md §3.10): a real `weft launch` creates
// <data-dir>/identity.key, shows its fingerprint, keeps it across a restart, never logs the private
// key, and refuses to start on a file it must not use, leaving the file as it was; the link's
// handshake authenticates each peer's key, which status shows.
import Foundation
import XCTest
import WeftControl
import WeftCrypto
@testable import WeftRouter

final class IdentityTests: XCTestCase {
    func testIdentitySurvivesRestartAndBadFileIsRefused() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        let keyPath = net.host(1).dataDir + "/identity.key"
        try net.launch(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { (try? net.status(1)) != nil })
        let fingerprint = try XCTUnwrap(try net.status(1).identity)
        let key = try IdentityKey(fileBytes: [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: keyPath))))
        XCTAssertEqual(key.fingerprint, fingerprint)
        XCTAssertEqual(LaunchInputs.fileMode(keyPath).map { $0 & 0o777 }, 0o600)
        XCTAssertEqual(try net.peers(1).first { $0.isSelf }?.identity, fingerprint)
        let text = try net.cli(1, ["status"]).output
        XCTAssertTrue(text.contains("Identity: \(fingerprint)"), text)

        net.kill(1, signal: SIGTERM)
        try net.launch(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { (try? net.status(1)) != nil })
        XCTAssertEqual(try net.status(1).identity, fingerprint, "same identity after a restart")
        XCTAssertFalse(net.log(1).contains(Hex.encode(key.privateKey)), "the private key is never logged")
        net.kill(1, signal: SIGTERM)

        // Readable by others: refused with what to do, exit status 2, the file untouched.
        XCTAssertEqual(chmod(keyPath, 0o644), 0)
        let before = FileManager.default.contents(atPath: keyPath)
        let refused = try net.launch(1)
        refused.waitUntilExit()
        XCTAssertEqual(refused.terminationStatus, 2)
        XCTAssertTrue(net.log(1).contains("chmod 600"), net.log(1))
        XCTAssertEqual(FileManager.default.contents(atPath: keyPath), before)
        XCTAssertEqual(LaunchInputs.fileMode(keyPath).map { $0 & 0o777 }, 0o644)
    }

    /// Two routers under a password: each one's connection and peer entry for the other carry
    /// `identity`, the fingerprint the other shows as its own (the key its handshake proved).
    func testEachRouterShowsThePeersAuthenticatedIdentity() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 15) { (try? net.connection(1, to: 2))?.state == .established
                && (try? net.connection(2, to: 1))?.state == .established },
                      "no link within 15 s: \(String(describing: try? net.connections(1)))\n\(net.log(1))")
        for (index, peer) in [(1, 2), (2, 1)] {
            let fingerprint = try XCTUnwrap(try net.status(peer).identity)
            let json = try net.cli(index, ["status", "connections", "--json"])
            XCTAssertEqual(json.status, 0, json.output)
            let connections = try JSONDecoder().decode([ConnectionStatus].self, from: Data(json.output.utf8))
            let link = try XCTUnwrap(connections.first { $0.state == .established }, json.output)
            XCTAssertEqual(link.identity, fingerprint, "router \(index)'s connection to \(peer): \(json.output)")
            let peers = try net.peers(index)
            XCTAssertEqual(peers.first { !$0.isSelf }?.identity, fingerprint, "router \(index)'s peer entry for \(peer)")
            XCTAssertNotEqual(fingerprint, try net.status(index).identity)
        }
    }
}
