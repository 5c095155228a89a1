import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

/// A connection whose data plane does not answer heartbeats leaves the forwarding routes but not
/// the gossip graph (docs/protocol.md §4.1).
final class DataPlaneRoutesTests: XCTestCase {
    func testSilenceRule() {
        // Before the first answer the connection's age counts.
        XCTAssertFalse(DataPlaneHealth.isDown(secondsSinceAnswer: nil, secondsUp: 0.5, onFastdp: false))
        XCTAssertFalse(DataPlaneHealth.isDown(secondsSinceAnswer: nil, secondsUp: DataPlaneHealth.silenceLimit, onFastdp: false))
        XCTAssertTrue(DataPlaneHealth.isDown(secondsSinceAnswer: nil, secondsUp: DataPlaneHealth.silenceLimit + 0.1, onFastdp: false))
        // After it, the silence since the last answer, however old the connection.
        XCTAssertFalse(DataPlaneHealth.isDown(secondsSinceAnswer: 1.2, secondsUp: 600, onFastdp: false))
        XCTAssertTrue(DataPlaneHealth.isDown(secondsSinceAnswer: 3.5, secondsUp: 600, onFastdp: false))
        XCTAssertFalse(DataPlaneHealth.isDown(secondsSinceAnswer: 0, secondsUp: 600, onFastdp: false))
    }

    /// A link on fastdp (VXLAN heartbeats prove both ways) carries traffic although the sleeve's
    /// heartbeats go unanswered (UDP 6783 alone blocked): it must stay in the routes.
    func testALinkOnFastdpIsNotDownWhateverTheSleeveSays() {
        XCTAssertFalse(DataPlaneHealth.isDown(secondsSinceAnswer: 3.5, secondsUp: 600, onFastdp: true))
        XCTAssertFalse(DataPlaneHealth.isDown(secondsSinceAnswer: nil, secondsUp: 600, onFastdp: true))
        // On hold (back on sleeve), the sleeve's silence counts again.
        XCTAssertTrue(DataPlaneHealth.isDown(secondsSinceAnswer: 3.5, secondsUp: 600, onFastdp: false))
    }

    /// a, b, c fully meshed; `downBy` report their a–b data plane down.
    private func triangle(downBy: [PeerName]) -> (Topology, PeerName, PeerName, PeerName) {
        let (a, b, c) = (peer(1), peer(2), peer(3))
        var all = entries(nodes: [a, b, c], edges: [(a, b), (a, c), (b, c)])
        for (reporter, other) in [(a, b), (b, a)] where downBy.contains(reporter) {
            let i = all[reporter]!.connections.firstIndex { $0.remote == other }!
            all[reporter]!.connections[i].dataPlaneDown = true
        }
        return (topology(of: a, all), a, b, c)
    }

    func testAllUpNeedsNoSecondGraph() {
        let (t, _, b, _) = triangle(downBy: [])
        XCTAssertNil(t.dataPlaneRoutes())
        XCTAssertEqual(t.routes().nextHop(to: b), b)
    }

    func testEitherSideReportingDownMovesTrafficToTheRelay() {
        for reporters in [[peer(1)], [peer(2)], [peer(1), peer(2)]] {
            let (t, _, b, c) = triangle(downBy: reporters)
            let forwarding = t.dataPlaneRoutes()!
            XCTAssertEqual(forwarding.nextHop(to: b), c, "reported by \(reporters)")
            XCTAssertEqual(forwarding.nextHop(to: c), c)
            // Broadcasts follow the same links: a floods to c only, c passes a's on to b.
            XCTAssertEqual(forwarding.broadcastNextHops(from: peer(1)), [c])
            // Gossip keeps the direct link, and b stays reachable.
            XCTAssertEqual(t.routes().nextHop(to: b), b)
            XCTAssertTrue(t.routes().isReachable(b))
        }
    }

    func testComesBackWhenHeartbeatsReturn() {
        var (t, _, b, c) = triangle(downBy: [peer(1)])
        XCTAssertEqual(t.dataPlaneRoutes()?.nextHop(to: b), c)
        let generation = t.dataPlaneGeneration
        var own = t.own.connections
        for i in own.indices { own[i].dataPlaneDown = false }
        XCTAssertTrue(t.setOwn(nickname: t.own.nickname, connections: own))
        XCTAssertNil(t.dataPlaneRoutes())
        XCTAssertNotEqual(t.dataPlaneGeneration, generation)
        XCTAssertEqual(t.routes().nextHop(to: b), b)
    }

    func testNoRelayMeansUnreachableForTrafficOnly() {
        let (a, b) = (peer(1), peer(2))
        var all = entries(nodes: [a, b], edges: [(a, b)])
        all[b]!.connections[0].dataPlaneDown = true
        let t = topology(of: a, all)
        XCTAssertNil(t.dataPlaneRoutes()!.nextHop(to: b))
        XCTAssertTrue(t.routes().isReachable(b))
    }

    func testGossipCachesFollowTheReports() throws {
        let (a, b, c) = (peer(1), peer(2), peer(3))
        var gossip = Gossip(own: entry(a, established: [b, c]))
        _ = try gossip.receive(from: b, type: .gossip, payload: TopologyUpdate(peers: [entry(b, established: [a, c]), entry(c, established: [a, b])]).encode(), now: 0)
        XCTAssertEqual(gossip.dataPlaneRoutes().nextHop(to: b), b)
        var down = entry(b, version: 2, established: [a, c])
        down.connections[0].dataPlaneDown = true
        _ = try gossip.receive(from: b, type: .gossip, payload: TopologyUpdate(peers: [down]).encode(), now: 1)
        XCTAssertEqual(gossip.dataPlaneRoutes().nextHop(to: b), c)
        XCTAssertEqual(gossip.routes().nextHop(to: b), b)
        _ = try gossip.receive(from: b, type: .gossip, payload: TopologyUpdate(peers: [entry(b, version: 3, established: [a, c])]).encode(), now: 2)
        XCTAssertEqual(gossip.dataPlaneRoutes().nextHop(to: b), b)
    }
}
