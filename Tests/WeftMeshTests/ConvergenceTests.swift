import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

/// In-memory routers gossiping over a random graph, with gossip delivered in random order and
/// duplicated, plus the periodic full gossip of protocol.md §4.
final class ConvergenceTests: XCTestCase {
    private struct Message {
        var to: Int
        var update: TopologyUpdate
        var duplicate: Bool
    }

    private func simulate(seed: UInt64, routers count: Int, extraEdges: Int, collideShortIds: Bool) {
        var g = SplitMix64(seed: seed)
        let names = (0..<count).map { _ in PeerName.random(using: &g) }
        let edges = randomConnectedGraph(names, extra: extraEdges, using: &g)
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var neighbours = Array(repeating: [Int](), count: count)
        for (a, b) in edges {
            neighbours[index[a]!].append(index[b]!)
            neighbours[index[b]!].append(index[a]!)
        }

        var routers: [Topology] = names.map { n in
            Topology(own: PeerEntry(name: n, nickname: "r-\(n)", uid: g.next(), version: 0,
                                    shortId: Topology.initialShortId(for: n), connections: []))
        }
        if collideShortIds {
            routers[count - 1] = Topology(own: PeerEntry(name: names[count - 1], nickname: "clash", uid: g.next(), version: 0,
                                                         shortId: routers[0].own.shortId, connections: []))
        }
        for i in 0..<count {
            let connections = neighbours[i].map {
                ConnectionEntry(remote: names[$0], address: address(names[$0]), established: true, outbound: names[i] < names[$0])
            }
            XCTAssertTrue(routers[i].setOwn(nickname: routers[i].own.nickname, connections: connections))
        }

        var queue: [Message] = []
        func send(from i: Int, _ update: TopologyUpdate) {
            for n in neighbours[i] { queue.append(Message(to: n, update: update, duplicate: false)) }
        }
        var changedSinceFullRound = true
        var fullRounds = 0, deliveries = 0
        while changedSinceFullRound {
            fullRounds += 1
            guard fullRounds < 50 else { return XCTFail("seed \(seed): no quiescence") }
            changedSinceFullRound = false
            for i in 0..<count { send(from: i, routers[i].fullUpdate()) }
            while !queue.isEmpty {
                deliveries += 1
                guard deliveries < 20_000 else { return XCTFail("seed \(seed): gossip does not settle") }
                var message = queue.remove(at: Int.random(in: 0..<queue.count, using: &g))
                if !message.duplicate && Int.random(in: 0..<4, using: &g) == 0 {
                    message.duplicate = true
                    queue.insert(message, at: Int.random(in: 0...queue.count, using: &g))
                }
                // Gossip travels encoded, as on the wire.
                let update = try! TopologyUpdate.decode(message.update.encode())
                let i = message.to
                let changes = routers[i].merge(update)
                _ = routers[i].removeUnreachable()
                let kept = changes.filter { routers[i].peers[$0.name] != nil }
                if !kept.isEmpty {
                    changedSinceFullRound = true
                    send(from: i, TopologyUpdate(peers: kept))
                }
            }
        }

        let reference = routers[0].peers
        XCTAssertEqual(reference.count, count, "seed \(seed)")
        for (i, r) in routers.enumerated() {
            XCTAssertEqual(r.peers, reference, "seed \(seed): router \(i) differs")
            let routes = r.routes()
            XCTAssertEqual(routes.reachable, Set(names), "seed \(seed)")
            for n in names where n != names[i] { XCTAssertNotNil(routes.nextHop(to: n)) }
        }
        XCTAssertEqual(Set(reference.values.map(\.shortId)).count, count, "seed \(seed): short ids not distinct")
    }

    func testEightRoutersConverge() {
        for seed in UInt64(100)..<UInt64(110) {
            simulate(seed: seed, routers: 8, extraEdges: Int(seed % 5), collideShortIds: false)
        }
    }

    func testEightRoutersConvergeWithAShortIdCollision() {
        for seed in UInt64(200)..<UInt64(205) {
            simulate(seed: seed, routers: 8, extraEdges: 3, collideShortIds: true)
        }
    }
}
