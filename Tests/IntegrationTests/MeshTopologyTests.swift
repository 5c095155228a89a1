// `weft status topology` on a real three-router mesh: every link once, this router's own links
// with mode and encryption, and `--dot` accepted by Graphviz.
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
                && topology?.links.filter { $0.mode != nil }.count == 2
        }
        XCTAssertTrue(meshed, "\(String(describing: topology))\n\(net.log(1))")
        let links = try XCTUnwrap(topology?.links)
        let own = try net.status(1).name
        for link in links {
            let isOwn = link.a == own || link.b == own
            XCTAssertEqual(link.encrypted, isOwn ? true : nil, "\(link)")
            XCTAssertEqual(link.mode == nil, !isOwn, "\(link)")
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
}
