// `weft status topology` built from gossiped entries and rendered as Graphviz, in memory.
import WeftControl
import WeftWire
import XCTest

final class TopologyStatusTests: XCTestCase {
    let a = PeerName("02:00:00:00:00:01")!, b = PeerName("02:00:00:00:00:02")!, c = PeerName("02:00:00:00:00:03")!

    private func entry(_ name: PeerName, _ nickname: String, _ connections: [ConnectionEntry]) -> PeerEntry {
        PeerEntry(name: name, nickname: nickname, uid: 1, version: 1, shortId: 0, connections: connections)
    }

    /// Each pair once, both ends' reports merged (state and the smaller MTU); mode and encryption
    /// from this router's own connection status, unknown (null) between other routers.
    func testLinksMergeBothEndsAndOnlyOwnLinksHaveModeAndEncryption() {
        let entries = [
            entry(a, "alpha", [ConnectionEntry(remote: b, address: "10.0.0.2:6783", established: true, outbound: true, mtu: 1420),
                               ConnectionEntry(remote: c, address: "10.0.0.3:6783", established: true, outbound: true)]),
            entry(b, "beta", [ConnectionEntry(remote: a, address: "10.0.0.1:6783", established: true, outbound: false, mtu: 1380),
                              ConnectionEntry(remote: c, address: "10.0.0.3:6783", established: false, outbound: true)]),
            entry(c, "gamma", [ConnectionEntry(remote: a, address: "10.0.0.1:6783", established: true, outbound: false)]),
        ]
        let own = [ConnectionStatus(peer: b.description, address: "10.0.0.2:6783", direction: .outbound, state: .established,
                                    encrypted: true, trusted: false, mode: "sleeve", ready: true, cipher: "chacha20-poly1305")]
        let topology = TopologyStatus.build(selfName: a, entries: entries.reversed(), reachable: { $0 != c }, own: own)
        XCTAssertEqual(topology.peers.map(\.nickname), ["alpha", "beta", "gamma"])
        XCTAssertEqual(topology.peers.map(\.isSelf), [true, false, false])
        XCTAssertEqual(topology.peers.map(\.reachable), [true, true, false])
        XCTAssertEqual(topology.links, [
            TopologyLink(a: a.description, b: b.description, state: .established, mtu: 1380, mode: "sleeve", encrypted: true, cipher: "chacha20-poly1305"),
            TopologyLink(a: a.description, b: c.description, state: .established, mtu: nil),
            TopologyLink(a: b.description, b: c.description, state: .connecting, mtu: nil),
        ])
        XCTAssertEqual(topology.links[0].summary, "sleeve, encrypted, mtu 1380")
    }

    func testOneEndReportingIsOneSided() {
        let entries = [entry(a, "alpha", [ConnectionEntry(remote: b, address: "x:1", established: true, outbound: true)]), entry(b, "beta", [])]
        XCTAssertEqual(TopologyStatus.build(selfName: a, entries: entries, reachable: { _ in true }, own: []).links.map(\.state), [.oneSided])
    }

    /// Nicknames are the operator's text: quotes, backslashes and newlines cannot break the graph.
    func testDotQuotesNicknamesAndDashesLinksNotEstablished() {
        let topology = TopologyStatus(
            peers: [TopologyPeer(name: "02:00:00:00:00:01", nickname: #"say "hi"\"#, isSelf: true, reachable: true),
                    TopologyPeer(name: "02:00:00:00:00:02", nickname: "b", isSelf: false, reachable: false)],
            links: [TopologyLink(a: "02:00:00:00:00:01", b: "02:00:00:00:00:02", state: .oneSided, mtu: 1420, mode: "fastdp", encrypted: false)])
        XCTAssertEqual(topology.dot(), #"""
            graph weft {
              node [shape=box];
              "02:00:00:00:00:01" [label="say \"hi\"\\\n02:00:00:00:00:01", style=bold];
              "02:00:00:00:00:02" [label="b\n02:00:00:00:00:02", color=gray];
              "02:00:00:00:00:01" -- "02:00:00:00:00:02" [label="one-sided, fastdp, clear, mtu 1420", style=dashed];
            }
            """#)
    }
}
