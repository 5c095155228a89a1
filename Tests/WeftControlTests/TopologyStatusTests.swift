// `weft status topology` built from gossiped entries and rendered as Graphviz, in memory.
import WeftControl
import WeftWire
import XCTest

final class TopologyStatusTests: XCTestCase {
    let a = PeerName("02:00:00:00:00:01")!, b = PeerName("02:00:00:00:00:02")!, c = PeerName("02:00:00:00:00:03")!

    private func entry(_ name: PeerName, _ nickname: String, _ connections: [ConnectionEntry]) -> PeerEntry {
        PeerEntry(name: name, nickname: nickname, uid: 1, version: 1, shortId: 0, connections: connections)
    }

    /// Each pair once, both ends' reports merged (state and the smaller MTU); this router's own
    /// end from its connection status (with the cipher); nothing where no end reported a data plane.
    func testLinksMergeBothEndsAndOwnEndIsTheLiveStatus() {
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

    private func report(_ mode: DataPlaneReport.Mode, _ encrypted: Bool) -> DataPlaneReport {
        DataPlaneReport(mode: mode, encrypted: encrypted)
    }

    /// A link between two other routers: mode and encryption as its ends gossip them.
    func testLinkBetweenOtherRoutersHasTheGossipedModeAndEncryption() {
        let entries = [
            entry(a, "alpha", [ConnectionEntry(remote: b, address: "x:1", established: true, outbound: true, dataPlane: report(.sleeve, true))]),
            entry(b, "beta", [ConnectionEntry(remote: a, address: "x:1", established: true, outbound: false, dataPlane: report(.sleeve, true)),
                              ConnectionEntry(remote: c, address: "x:3", established: true, outbound: true, mtu: 1420, dataPlane: report(.fastdp, false))]),
            entry(c, "gamma", [ConnectionEntry(remote: b, address: "x:2", established: true, outbound: false, dataPlane: report(.fastdp, false))]),
        ]
        let links = TopologyStatus.build(selfName: a, entries: entries, reachable: { _ in true }, own: []).links
        XCTAssertEqual(links[1], TopologyLink(a: b.description, b: c.description, state: .established, mtu: 1420, mode: "fastdp", encrypted: false))
        XCTAssertEqual(links[1].summary, "fastdp, clear, mtu 1420")
        // No live status for the own link (not established here any more): its own gossip serves.
        XCTAssertEqual(links[0], TopologyLink(a: a.description, b: b.description, state: .established, mtu: nil, mode: "sleeve", encrypted: true))
    }

    /// Ends that disagree: the lesser mode, clear if either says clear, and what each end says.
    func testDisagreeingEndsShowTheLesserAndEachReport() {
        let entries = [
            entry(a, "alpha", []),
            entry(b, "beta", [ConnectionEntry(remote: c, address: "x:3", established: true, outbound: true, dataPlane: report(.fastdp, false))]),
            entry(c, "gamma", [ConnectionEntry(remote: b, address: "x:2", established: true, outbound: false, dataPlane: report(.sleeve, true))]),
        ]
        let link = TopologyStatus.build(selfName: a, entries: entries, reachable: { _ in true }, own: []).links[0]
        XCTAssertEqual(link.mode, "sleeve")
        XCTAssertEqual(link.encrypted, false)
        XCTAssertEqual(link.ends, [TopologyLinkEnd(peer: b.description, mode: "fastdp", encrypted: false),
                                   TopologyLinkEnd(peer: c.description, mode: "sleeve", encrypted: true)])
        XCTAssertEqual(link.summary, "sleeve, clear, ends differ: \(b) fastdp clear, \(c) sleeve encrypted")
        // One end with no data plane yet: the link has none.
        var noSession = entries
        noSession[2].connections[0].dataPlane = report(.noDataPlane, false)
        XCTAssertEqual(TopologyStatus.build(selfName: a, entries: noSession, reachable: { _ in true }, own: []).links[0].mode, "none")
        // Only one end reports (the other predates the report): its report, nothing differs.
        var oneReport = entries
        oneReport[2].connections[0].dataPlane = nil
        let single = TopologyStatus.build(selfName: a, entries: oneReport, reachable: { _ in true }, own: []).links[0]
        XCTAssertEqual([single.mode, single.encrypted.map(String.init)], ["fastdp", "false"])
        XCTAssertNil(single.ends)
    }

    /// This router's end of its own link is its live status, not its last gossip; the far end's
    /// report is merged with it.
    func testOwnEndIsLiveAndTheFarEndIsMerged() {
        let entries = [
            entry(a, "alpha", [ConnectionEntry(remote: b, address: "x:2", established: true, outbound: true, dataPlane: report(.sleeve, false))]),
            entry(b, "beta", [ConnectionEntry(remote: a, address: "x:1", established: true, outbound: false, dataPlane: report(.fastdp, false))]),
        ]
        func link(liveMode: String?) -> TopologyLink {
            let own = [ConnectionStatus(peer: b.description, address: "x:2", direction: .outbound, state: .established,
                                        encrypted: false, trusted: true, mode: liveMode, ready: true)]
            return TopologyStatus.build(selfName: a, entries: entries, reachable: { _ in true }, own: own).links[0]
        }
        XCTAssertEqual(link(liveMode: "fastdp"), TopologyLink(a: a.description, b: b.description, state: .established, mtu: nil,
                                                             mode: "fastdp", encrypted: false))
        // No session here yet: status shows no mode, the link has no data plane.
        XCTAssertEqual(link(liveMode: nil).mode, "none")
        XCTAssertEqual(link(liveMode: nil).ends?.map(\.mode), ["none", "fastdp"])
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
