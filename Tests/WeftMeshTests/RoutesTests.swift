import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

final class RoutesTests: XCTestCase {
    func testLine() {
        let (a, b, c) = (peer(1), peer(2), peer(3))
        let all = entries(nodes: [a, b, c], edges: [(a, b), (b, c)])
        let routes = topology(of: a, all).routes()
        XCTAssertEqual(routes.nextHop(to: c), b)
        XCTAssertEqual(routes.nextHop(to: b), b)
        XCTAssertNil(routes.nextHop(to: a))
        XCTAssertEqual(routes.unicast, [b: b, c: b])
        XCTAssertEqual(routes.reachable, [a, b, c])
        XCTAssertEqual(topology(of: c, all).routes().nextHop(to: a), b)
    }

    func testSquareTieBreaksByName() {
        // a–x, a–y, x–d, y–d: two equal paths to d; the smaller first hop wins.
        let (a, d) = (peer(1), peer(9))
        for (x, y) in [(peer(3), peer(5)), (peer(5), peer(3))] {
            let all = entries(nodes: [a, x, y, d], edges: [(a, x), (a, y), (x, d), (y, d)])
            XCTAssertEqual(topology(of: a, all).routes().nextHop(to: d), min(x, y))
            // And from d the same rule applies.
            XCTAssertEqual(topology(of: d, all).routes().nextHop(to: a), min(x, y))
        }
    }

    func testOneSidedConnectionIsNotAnEdge() {
        let (a, b, c) = (peer(1), peer(2), peer(3))
        // a lists b established; b lists a only as pending. b–c is mutual.
        var t = Topology(own: entry(a, established: [b]))
        _ = t.merge(TopologyUpdate(peers: [entry(b, established: [c], pending: [a]), entry(c, established: [b])]))
        XCTAssertEqual(t.routes().unicast, [:])
        XCTAssertEqual(t.routes().reachable, [a])
        // b does not list a at all.
        _ = t.merge(TopologyUpdate(peers: [entry(b, version: 2, established: [c])]))
        XCTAssertEqual(t.routes().unicast, [:])
        // Now mutual.
        _ = t.merge(TopologyUpdate(peers: [entry(b, version: 3, established: [c, a])]))
        XCTAssertEqual(t.routes().unicast, [b: b, c: b])
        // Unknown peers and self-loops never make edges.
        var lone = Topology(own: entry(a, established: [a, peer(7)]))
        XCTAssertEqual(lone.routes().unicast, [:])
        XCTAssertEqual(lone.removeUnreachable(), [])
    }

    func testUnicastRoutesFollowShortestPaths() {
        var g = SplitMix64(seed: 20)
        for _ in 0..<20 {
            let nodes = (0..<12).map { _ in PeerName.random(using: &g) }
            let all = entries(nodes: nodes, edges: randomConnectedGraph(nodes, extra: 8, using: &g))
            let topologies = Dictionary(uniqueKeysWithValues: nodes.map { ($0, topology(of: $0, all)) })
            let routes = topologies.mapValues { $0.routes() }
            let distance = { (from: PeerName) -> [PeerName: Int] in
                let (parent, order) = MeshGraph(peers: all).bfs(from: from)
                var d: [PeerName: Int] = [from: 0]
                for n in order.dropFirst() { d[n] = d[parent[n]!]! + 1 }
                return d
            }
            for src in nodes {
                XCTAssertEqual(routes[src]!.reachable, Set(nodes))
                let d = distance(src)
                for dst in nodes where dst != src {
                    // Following next hops reaches the destination in exactly the shortest distance.
                    var at = src, hops = 0
                    while at != dst, hops <= nodes.count {
                        at = routes[at]!.nextHop(to: dst)!
                        hops += 1
                    }
                    XCTAssertEqual(at, dst)
                    XCTAssertEqual(hops, d[dst])
                }
            }
        }
    }

    func testBroadcastTreeDeliversExactlyOnce() {
        var g = SplitMix64(seed: 21)
        for round in 0..<10 {
            let nodes = (0..<10).map { _ in PeerName.random(using: &g) }
            let all = entries(nodes: nodes, edges: randomConnectedGraph(nodes, extra: round * 2, using: &g))
            let routes = Dictionary(uniqueKeysWithValues: nodes.map { ($0, topology(of: $0, all).routes()) })
            for source in nodes {
                var received: [PeerName: Int] = [:]
                var queue: [(from: PeerName, to: PeerName)] = routes[source]!.broadcastNextHops(from: source).map { (source, $0) }
                var deliveries = 0
                while let (from, to) = queue.popLast() {
                    deliveries += 1
                    guard deliveries <= nodes.count * nodes.count else { return XCTFail("source \(source): broadcast loops") }
                    // Every forwarding step follows an edge of the graph.
                    XCTAssertTrue(all[from]!.connections.contains { $0.remote == to && $0.established })
                    received[to, default: 0] += 1
                    queue += routes[to]!.broadcastNextHops(from: source).map { (to, $0) }
                }
                XCTAssertNil(received[source])
                XCTAssertEqual(received.count, nodes.count - 1)
                XCTAssertTrue(received.values.allSatisfy { $0 == 1 }, "source \(source): \(received)")
            }
            // The source's own next hops are all its neighbours, ascending.
            let s = nodes[0]
            XCTAssertEqual(routes[s]!.broadcastNextHops(from: s), all[s]!.connections.map(\.remote).sorted())
        }
    }

    /// The broadcast rule of protocol.md §4.1 is the reverse of unicast: a router forwards a
    /// broadcast from S to exactly the neighbours whose own next hop toward S is itself. The two
    /// ways of computing it (a search from the source, or one from each neighbour serving every
    /// source) give the same children.
    func testBroadcastChildrenAreTheReverseOfUnicastAndBothSearchesAgree() {
        var g = SplitMix64(seed: 22)
        for round in 0..<12 {
            let nodes = (0..<14).map { _ in PeerName.random(using: &g) }
            let all = entries(nodes: nodes, edges: randomConnectedGraph(nodes, extra: round * 3, using: &g))
            let routes = Dictionary(uniqueKeysWithValues: nodes.map { ($0, topology(of: $0, all).routes()) })
            let graph = MeshGraph(peers: all)
            for local in nodes {
                let l = graph.slots[local]!
                let slots = nodes.map { graph.slots[$0]! }
                let together = graph.broadcastChildren(of: l, sources: slots)  // more sources than neighbours
                for (k, source) in nodes.enumerated() {
                    let alone = graph.broadcastChildren(of: l, sources: [slots[k]])[0]  // one source
                    XCTAssertEqual(alone, together[k], "round \(round): \(local) for \(source)")
                    let expected = graph.neighbours(of: local).filter { c in routes[c]!.nextHop(to: source) == local }
                    XCTAssertEqual(alone.map { graph.names[Int($0)] }, expected, "round \(round): \(local) for \(source)")
                }
            }
        }
    }

    /// The table of every source at once keeps one bit per neighbour in 64-bit words: a router
    /// with more than 64 neighbours (a hub of 130 with a ring around it) spans three words.
    func testBroadcastTableOfARouterWithManyNeighbours() {
        var g = SplitMix64(seed: 23)
        let nodes = (0..<160).map { _ in PeerName.random(using: &g) }
        let hub = nodes[0]
        var edges = (1...130).map { (hub, nodes[$0]) }
        edges += (1..<160).map { (nodes[$0], nodes[$0 % 159 + 1]) }
        edges += randomConnectedGraph(Array(nodes[100...]), extra: 20, using: &g)
        let all = entries(nodes: nodes, edges: edges)
        let graph = MeshGraph(peers: all)
        let slots = nodes.map { graph.slots[$0]! }
        for local in [hub, nodes[1], nodes[140]] {
            let l = graph.slots[local]!
            let together = graph.broadcastChildren(of: l, sources: slots)
            for k in slots.indices {
                XCTAssertEqual(together[k], graph.broadcastChildren(of: l, sources: [slots[k]])[0], "\(local) for \(nodes[k])")
            }
        }
    }

    func testBroadcastFromUnknownOrDisconnectedSource() {
        let (a, b, c) = (peer(1), peer(2), peer(3))
        var t = Topology(own: entry(a, established: [b]))
        _ = t.merge(TopologyUpdate(peers: [entry(b, established: [a]), entry(c)]))
        XCTAssertEqual(t.routes().broadcastNextHops(from: peer(8)), [])
        XCTAssertEqual(t.routes().broadcastNextHops(from: c), [])
        XCTAssertEqual(t.routes().broadcastNextHops(from: b), [])  // a is a leaf of b's tree
    }
}
