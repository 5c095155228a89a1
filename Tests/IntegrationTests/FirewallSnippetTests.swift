// The nftables snippet of docs/operations.md ("Firewall snippets"), loaded as written on both
// hosts of a two-router mesh in namespaces: the routers must still connect and carry traffic.
import Foundation
import XCTest

final class FirewallSnippetTests: XCTestCase {
    private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The first ```nft block of docs/operations.md.
    private func snippet() throws -> String {
        let text = try String(contentsOf: root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let start = try XCTUnwrap(text.range(of: "```nft\n"), "docs/operations.md has no nft snippet")
        let end = try XCTUnwrap(text.range(of: "\n```", range: start.upperBound..<text.endIndex))
        return String(text[start.upperBound..<end.lowerBound]) + "\n"
    }

    func testNftablesSnippetLetsTheMeshUp() throws {
        try requireRoot()
        let rules = try snippet()
        XCTAssertTrue(rules.contains("policy drop"), "the snippet is meant to be a restrictive policy")
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        let file = "\(net.directory)/weft.nft"
        try rules.write(toFile: file, atomically: true, encoding: .utf8)
        for index in 1...2 {
            let load = try Shell.run(["ip", "netns", "exec", net.host(index).namespace, "nft", "-f", file], check: false)
            XCTAssertEqual(load.status, 0, "nft refused the documented snippet:\n\(load.output)")
        }
        // The policy is in force: a port it does not open is dropped (no answer, not a refusal).
        let closed = try Shell.run(["ip", "netns", "exec", net.host(1).namespace, "nc", "-z", "-w", "1", net.host(2).address, "6799"],
                                   check: false)
        XCTAssertNotEqual(closed.status, 0)

        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.sleeveReady(1, peers: 1) && net.sleeveReady(2, peers: 1), "\(net.log(1))\n\(net.log(2))")
    }
}
