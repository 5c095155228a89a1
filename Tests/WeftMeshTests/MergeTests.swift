import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

final class MergeTests: XCTestCase {
    func testInitialShortIdIsFNV1aOfTheNameBytes() {
        // Vectors in docs/protocol.md §1 (computed independently).
        XCTAssertEqual(Topology.initialShortId(for: PeerName("02:00:00:00:00:01")!), 3068)
        XCTAssertEqual(Topology.initialShortId(for: PeerName("aa:bb:cc:dd:ee:ff")!), 2314)
        var g = SplitMix64(seed: 9)
        for _ in 0..<1000 { XCTAssertLessThanOrEqual(Topology.initialShortId(for: PeerName.random(using: &g)), 4095) }
    }

    func testSetOwnBumpsVersionOnlyOnChange() {
        var t = Topology(own: entry(peer(1), version: 5))
        XCTAssertFalse(t.setOwn(nickname: t.own.nickname, connections: t.own.connections))
        XCTAssertEqual(t.own.version, 5)
        let c = [ConnectionEntry(remote: peer(2), address: "a:1", established: false, outbound: true)]
        XCTAssertTrue(t.setOwn(nickname: t.own.nickname, connections: c))
        XCTAssertEqual(t.own.version, 6)
        XCTAssertFalse(t.setOwn(nickname: t.own.nickname, connections: c))
        XCTAssertTrue(t.setOwn(nickname: "renamed", connections: c))
        XCTAssertEqual(t.own.version, 7)
        XCTAssertEqual(t.peers[peer(1)], t.own)
    }

    func testSetOwnCutsNicknameToWhatTheWireCarries() throws {
        var t = Topology(own: entry(peer(1)))
        _ = t.setOwn(nickname: String(repeating: "ü", count: 40), connections: [])
        XCTAssertEqual(t.own.nickname.utf8.count, 64)
        XCTAssertEqual(try TopologyUpdate.decode(t.fullUpdate().encode()).peers, [t.own])
    }

    func testNewerEntryReplacesOlderIsIgnored() {
        var t = Topology(own: entry(peer(1)))
        XCTAssertEqual(t.merge(TopologyUpdate(peers: [entry(peer(2), uid: 5, version: 3)])), [entry(peer(2), uid: 5, version: 3)])
        XCTAssertEqual(t.merge(TopologyUpdate(peers: [entry(peer(2), uid: 9, version: 2)])), [])  // older version
        XCTAssertEqual(t.merge(TopologyUpdate(peers: [entry(peer(2), uid: 4, version: 3, established: [peer(1)])])), [])  // same version, smaller uid
        let restarted = entry(peer(2), uid: 6, version: 3, established: [peer(1)])
        XCTAssertEqual(t.merge(TopologyUpdate(peers: [restarted])), [restarted])  // same version, greater uid
        XCTAssertEqual(t.peers[peer(2)], restarted)
    }

    func testMergeIsIdempotent() {
        var g = SplitMix64(seed: 10)
        let update = TopologyUpdate(peers: (2...8).map { entry(peer($0), uid: g.next(), version: g.next() % 10, established: [peer(1)]) })
        var t = Topology(own: entry(peer(1)))
        let first = t.merge(update)
        XCTAssertEqual(first.count, 7)
        let state = t.peers
        XCTAssertEqual(t.merge(update), [])
        XCTAssertEqual(t.peers, state)
        XCTAssertEqual(t.merge(t.fullUpdate()), [])
    }

    func testMergeIsOrderIndependent() {
        var g = SplitMix64(seed: 11)
        let own = entry(peer(1), uid: 100, version: 4, shortId: 100)
        // Several versions and incarnations per peer; an entry's content is a function of
        // (name, version, uid), as it is for honest owners.
        var pool: [PeerEntry] = []
        for p in 2...7 {
            for _ in 0..<4 {
                let version = g.next() % 6, uid = g.next() % 3
                let links = (1...7).filter { $0 != p && (UInt64($0 * p) &+ version &+ uid) % 3 == 0 }.map(peer)
                pool.append(entry(peer(p), uid: uid, version: version, shortId: UInt16(p), established: links))
            }
        }
        // Entries about ourselves from earlier incarnations.
        pool.append(entry(peer(1), uid: 7, version: 9, shortId: 100))
        pool.append(entry(peer(1), uid: 8, version: 3, shortId: 100))
        pool.append(entry(peer(1), uid: 9, version: 12, shortId: 100))
        let updates = (0..<12).map { _ in TopologyUpdate(peers: (0..<5).map { _ in pool.randomElement(using: &g)! }) }
            + [TopologyUpdate(peers: pool)]

        var reference: [PeerName: PeerEntry]?
        for _ in 0..<50 {
            var sequence = updates.shuffled(using: &g)
            for _ in 0..<5 { sequence.insert(updates.randomElement(using: &g)!, at: Int.random(in: 0...sequence.count, using: &g)) }
            var t = Topology(own: own)
            for u in sequence { _ = t.merge(u) }
            if let reference { XCTAssertEqual(t.peers, reference) } else { reference = t.peers }
        }
        XCTAssertEqual(reference?[peer(1)]?.version, 13)
        XCTAssertEqual(reference?.count, 7)
        // Each peer ends at its greatest (version, uid).
        for p in 2...7 {
            let best = pool.filter { $0.name == peer(p) }.max { ($0.version, $0.uid) < ($1.version, $1.uid) }
            XCTAssertEqual(reference?[peer(p)], best)
        }
    }

    func testEntryAboutSelfFromEarlierIncarnationBumpsOwnVersion() {
        var t = Topology(own: entry(peer(1), uid: 1, version: 3))
        // Another uid and a higher version: our version goes above it, and our entry is re-gossiped.
        let changes = t.merge(TopologyUpdate(peers: [entry(peer(1), uid: 2, version: 10, established: [peer(9)])]))
        XCTAssertEqual(t.own.version, 11)
        XCTAssertEqual(t.own.uid, 1)
        XCTAssertEqual(t.own.connections, [])
        XCTAssertEqual(changes, [t.own])
        // Equal version counts too.
        XCTAssertEqual(t.merge(TopologyUpdate(peers: [entry(peer(1), uid: 2, version: 11)])).map(\.version), [12])
        // Older, or our own uid: nothing.
        XCTAssertEqual(t.merge(TopologyUpdate(peers: [entry(peer(1), uid: 2, version: 5)])), [])
        XCTAssertEqual(t.merge(TopologyUpdate(peers: [entry(peer(1), uid: 1, version: 50)])), [])
        XCTAssertEqual(t.own.version, 12)
    }

    func testShortIdCollisionMovesTheGreaterNameOnly() {
        // We are the greater name: we bump our version and move to the first free id from the
        // start of protocol.md §1's vector (02:00:00:00:00:02 at version 5 starts at 3382).
        XCTAssertEqual(Topology.movedShortIdStart(for: peer(2), version: 5), 3382)
        var b = Topology(own: entry(peer(2), version: 4, shortId: 7))
        let changes = b.merge(TopologyUpdate(peers: [entry(peer(1), shortId: 7), entry(peer(3), shortId: 0), entry(peer(4), shortId: 2)]))
        XCTAssertEqual(b.own.shortId, 3382)
        XCTAssertEqual(b.own.version, 5)
        // Ids taken from the start on are skipped, round past 4095.
        var c = Topology(own: entry(peer(2), version: 4, shortId: 7))
        _ = c.merge(TopologyUpdate(peers: [entry(peer(1), shortId: 7)] + (3382...4095).map { entry(peer(10 + Int($0)), shortId: UInt16($0)) }
                                    + [entry(peer(9), shortId: 0)]))
        XCTAssertEqual(c.own.shortId, 1)
        XCTAssertTrue(changes.contains(b.own))
        // We are the smaller name: we keep ours, the other moves itself.
        var a = Topology(own: entry(peer(1), version: 4, shortId: 7))
        _ = a.merge(TopologyUpdate(peers: [entry(peer(2), shortId: 7)]))
        XCTAssertEqual(a.own.shortId, 7)
        XCTAssertEqual(a.own.version, 4)
        XCTAssertEqual(a.peers[peer(2)]?.shortId, 7)  // never rewritten here
    }

    func testShortIdCollisionResolvesBetweenTwoRouters() {
        var a = Topology(own: entry(peer(1), established: [peer(2)]))
        var b = Topology(own: entry(peer(2), shortId: a.own.shortId, established: [peer(1)]))
        XCTAssertEqual(a.own.shortId, b.own.shortId)
        var toA = [b.fullUpdate()], toB = [a.fullUpdate()]
        for _ in 0..<20 where !toA.isEmpty || !toB.isEmpty {
            let forA = toA, forB = toB
            toA = []; toB = []
            for u in forA { let c = a.merge(u); if !c.isEmpty { toB.append(TopologyUpdate(peers: c)) } }
            for u in forB { let c = b.merge(u); if !c.isEmpty { toA.append(TopologyUpdate(peers: c)) } }
        }
        XCTAssertTrue(toA.isEmpty && toB.isEmpty, "gossip does not settle")
        XCTAssertNotEqual(a.own.shortId, b.own.shortId)
        XCTAssertEqual(a.own.shortId, Topology.initialShortId(for: peer(1)))
        XCTAssertEqual(b.own.shortId, Topology.movedShortIdStart(for: peer(2), version: b.own.version))
        XCTAssertEqual(a.peers, b.peers)
    }

    func testRemoveUnreachableDropsPartitionedPeer() {
        let all = entries(nodes: [peer(1), peer(2), peer(3), peer(4)], edges: [(peer(1), peer(2)), (peer(2), peer(3)), (peer(3), peer(4))])
        var t = topology(of: peer(1), all)
        XCTAssertEqual(t.removeUnreachable(), [])
        XCTAssertEqual(t.peers.count, 4)
        // 3 loses its link to 2: 3 and 4 are cut off from 1.
        let cut = entry(peer(3), version: 2, established: [peer(4)])
        _ = t.merge(TopologyUpdate(peers: [cut]))
        XCTAssertEqual(t.removeUnreachable(), [peer(3), peer(4)])
        XCTAssertEqual(Set(t.peers.keys), [peer(1), peer(2)])
        // A lone router keeps itself.
        var alone = Topology(own: entry(peer(9)))
        XCTAssertEqual(alone.removeUnreachable(), [])
        XCTAssertEqual(alone.peers.count, 1)
    }

    func testDialCandidates() {
        // 1 (us) is connected to 2. 2 lists 4 established and 5 pending; 3 (a smaller name than
        // 2) lists 4 only as pending, at another address: the established listing wins.
        let us = entry(peer(1), established: [peer(2)])
        let two = PeerEntry(name: peer(2), nickname: "", uid: 1, version: 1, shortId: 2, connections: [
            ConnectionEntry(remote: peer(1), address: "us:6783", established: true, outbound: false),
            ConnectionEntry(remote: peer(4), address: "four-est:6783", established: true, outbound: true),
            ConnectionEntry(remote: peer(5), address: "five:6783", established: false, outbound: true),
        ])
        let three = PeerEntry(name: peer(3), nickname: "", uid: 1, version: 1, shortId: 3, connections: [
            ConnectionEntry(remote: peer(4), address: "four-other:6783", established: false, outbound: true),
            ConnectionEntry(remote: peer(3), address: "self:6783", established: true, outbound: true),
        ])
        let four = entry(peer(4), established: [peer(2)])
        let five = entry(peer(5))
        var t = Topology(own: us)
        _ = t.merge(TopologyUpdate(peers: [two, three, four, five]))
        let candidates = t.dialCandidates(connected: [peer(2)])
        // 3 is listed by nobody else, so it has no address; 1 is us; 2 is connected.
        XCTAssertEqual(candidates.map(\.name), [peer(4), peer(5)])
        XCTAssertEqual(candidates.map(\.address), ["four-est:6783", "five:6783"])
        XCTAssertEqual(t.dialCandidates(connected: [peer(2), peer(4), peer(5)]).count, 0)
        XCTAssertEqual(t.dialCandidates(connected: []).map(\.name), [peer(2), peer(4), peer(5)])
        XCTAssertEqual(t.dialCandidates(connected: []).first?.address, address(peer(2)))

        // The candidates follow each change: 2 stops listing 4, then 3 is forgotten.
        var two2 = two
        two2.version = 2
        two2.connections.remove(at: 1)
        _ = t.merge(TopologyUpdate(peers: [two2]))
        XCTAssertEqual(t.dialCandidates(connected: [peer(2)]).map(\.address), ["four-other:6783", "five:6783"])
        t.forget(peer(3))
        XCTAssertEqual(t.dialCandidates(connected: [peer(2)]).map(\.name), [peer(5)])
    }
}
