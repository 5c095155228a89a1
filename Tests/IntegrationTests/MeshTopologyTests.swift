// `weft status topology` on real three-router meshes: every link once, each with the mode and
// encryption its ends gossip (a link router 1 is not on included), and `--dot` accepted by Graphviz.
import Foundation
import WeftControl
import XCTest

final class MeshTopologyTests: XCTestCase {
    func testTopologyShowsEveryLinkAndDotIsValidGraphviz() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launchStar(3)
        var topology: TopologyStatus?
        let meshed = net.waitUntil(timeout: 30) {
            let result = try net.cli(1, ["status", "topology", "--json"])
            topology = try JSONDecoder().decode(TopologyStatus.self, from: Data(result.output.utf8))
            return topology?.links.count == 3 && topology?.links.allSatisfy { $0.state == .established && ($0.mtu != nil) } == true
                && topology?.links.allSatisfy { $0.mode == "sleeve" } == true
        }
        XCTAssertTrue(meshed, "\(String(describing: topology))\n\(net.log(1))")
        let links = try XCTUnwrap(topology?.links)
        let own = try net.status(1).name
        for link in links {
            // The cipher is known first-hand only; mode and encryption come from the gossip too.
            XCTAssertEqual(link.encrypted, true, "\(link)")
            XCTAssertEqual(link.cipher == nil, link.a != own && link.b != own, "\(link)")
        }

        let text = try net.cli(1, ["status", "topology"])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.output.contains("3 routers, 3 links") && text.output.contains("(self)"), text.output)

        let dot = try net.cli(1, ["status", "topology", "--dot"])
        XCTAssertEqual(dot.status, 0, dot.output)
        let file = "\(net.directory)/mesh.dot"
        try dot.output.write(toFile: file, atomically: true, encoding: .utf8)
        let svg = try Shell.run(["dot", "-Tsvg", file], check: false)
        XCTAssertEqual(svg.status, 0, "dot refused:\n\(svg.output)\n\(dot.output)")
        XCTAssertTrue(svg.output.contains("<svg"), svg.output)
        XCTAssertEqual(dot.output.components(separatedBy: " -- ").count - 1, 3, dot.output)

        let misuse = try net.cli(1, ["status", "peers", "--dot"])
        XCTAssertEqual(misuse.status, 2, misuse.output)
    }

    /// A line 1–2–3 (1 and 3 cannot reach each other): router 1 shows the link between 2 and 3,
    /// which it is not on, with the mode and encryption routers 2 and 3 gossip; without a password
    /// it is clear.
    func testLinkBetweenTwoOtherRoutersShowsItsModeAndEncryption() throws {
        try requireRoot()
        for password in ["correct horse battery", nil] {
            let net = try TestNet(hosts: 3)
            defer { net.cleanup() }
            try net.launchLine(password: password)
            var far: [String] = []
            var topology: TopologyStatus?
            let shown = net.waitUntil(timeout: 30) {
                far = try [net.status(2).name, net.status(3).name].sorted()
                let result = try net.cli(1, ["status", "topology", "--json"])
                topology = try JSONDecoder().decode(TopologyStatus.self, from: Data(result.output.utf8))
                return topology?.links.first { [$0.a, $0.b] == far }?.mode == "sleeve" && topology?.links.count == 2
            }
            XCTAssertTrue(shown, "\(String(describing: topology))\n\(net.log(1))\n\(net.log(2))")
            let link = try XCTUnwrap(topology?.links.first { [$0.a, $0.b] == far })
            XCTAssertEqual(link.state, .established, "\(link)")
            XCTAssertEqual(link.encrypted, password != nil, "\(link)")
            XCTAssertNil(link.cipher, "the cipher is not gossiped: \(link)")
            XCTAssertNil(link.ends, "both ends report the same: \(link)")
            let text = try net.cli(1, ["status", "topology"])
            XCTAssertTrue(text.output.contains(net.nickname(3)) && text.output.contains("sleeve"), text.output)
            let dot = try net.cli(1, ["status", "topology", "--dot"])
            XCTAssertTrue(dot.output.contains("\"\(far[0])\" -- \"\(far[1])\" [label=\"sleeve, \(password != nil ? "encrypted" : "clear")"), dot.output)
        }
    }
}
