import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

/// The rules of WeftMesh/Gossip.swift, a few routers at a time with messages delivered at once
/// (the thousand-router version is Tests/GossipSimulationTests).
final class GossipTests: XCTestCase {
    /// Routers `peer(1)…peer(n)`; links made with `link`, messages delivered by `deliver`.
    private struct Net {
        var routers: [PeerName: Gossip] = [:]
        var links: Set<[PeerName]> = []
        var pending: [(from: PeerName, send: GossipSend)] = []
        var delivered: [(from: PeerName, send: GossipSend)] = []
        var now = 0.0

        init(_ n: Int) {
            for i in 1...n {
                let p = peer(i)
                routers[p] = Gossip(own: PeerEntry(name: p, nickname: "r\(i)", uid: UInt64(i), version: 1,
                                                   shortId: Topology.initialShortId(for: p), connections: []))
            }
        }

        func linked(_ a: PeerName, _ b: PeerName) -> Bool { links.contains([a, b].sorted()) }

        mutating func take(_ from: PeerName, _ effects: GossipEffects) {
            for send in effects.sends { pending.append((from, send)) }
        }

        mutating func ownChanged(_ p: PeerName) {
            let connections = links.filter { $0.contains(p) }.map { $0[0] == p ? $0[1] : $0[0] }.sorted().map {
                ConnectionEntry(remote: $0, address: address($0), established: true, outbound: p < $0)
            }
            take(p, routers[p]!.setOwn(nickname: routers[p]!.topology.own.nickname, connections: connections, now: now))
        }

        mutating func link(_ a: PeerName, _ b: PeerName) {
            links.insert([a, b].sorted())
            take(a, routers[a]!.linkUp(b, now: now))
            take(b, routers[b]!.linkUp(a, now: now))
            ownChanged(a)
            ownChanged(b)
        }

        mutating func unlink(_ a: PeerName, _ b: PeerName) {
            links.remove([a, b].sorted())
            routers[a]!.linkDown(b)
            routers[b]!.linkDown(a)
            ownChanged(a)
            ownChanged(b)
        }

        /// Delivers until nothing is in flight and nothing waits to be forwarded (time moves on
        /// to each router's `forwardDue`); messages on a link that is gone are lost.
        mutating func deliver() {
            while true {
                while !pending.isEmpty {
                    let (from, send) = pending.removeFirst()
                    guard linked(from, send.to) else { continue }
                    delivered.append((from, send))
                    take(send.to, try! routers[send.to]!.receive(from: from, type: send.type, payload: send.payload, now: now))
                }
                guard let due = routers.values.compactMap(\.forwardDue).min() else { return }
                now = max(now, due)
                for p in routers.keys.sorted() where routers[p]!.forwardDue.map({ $0 <= now }) ?? false {
                    take(p, routers[p]!.forwardWaiting(now: now))
                }
            }
        }

        /// Advances time in router ticks of 0.5 s, delivering after each.
        mutating func run(seconds: Double) {
            let end = now + seconds
            while now < end {
                now += 0.5
                for p in routers.keys.sorted() { take(p, routers[p]!.tick(now: now)) }
                deliver()
            }
        }

        /// 1–2–…–n, settled.
        static func line(_ n: Int) -> Net {
            var net = Net(n)
            for i in 1..<n { net.link(peer(i), peer(i + 1)) }
            net.deliver()
            net.run(seconds: 1)
            return net
        }

        func holds(_ p: PeerName, _ q: PeerName) -> Bool { routers[p]!.topology.peers[q] != nil }
    }

    func testDigestCodecRoundTripsAndRefusesMalformedInput() throws {
        let versions = (1...5).map { PeerVersion(name: peer($0), uid: UInt64($0) << 40, version: UInt64($0) * 3) }
        for digest in [GossipDigest.summary(of: versions), .full(versions, wantsReply: true), .full([], wantsReply: false)] {
            XCTAssertEqual(try GossipDigest.decode(digest.encode()), digest)
        }
        XCTAssertEqual(GossipDigest.summary(of: versions), GossipDigest.summary(of: versions.reversed()), "order does not matter")
        XCTAssertNotEqual(GossipDigest.summary(of: versions), GossipDigest.summary(of: Array(versions.dropLast())))
        var bumped = versions
        bumped[2].version += 1
        XCTAssertNotEqual(GossipDigest.summary(of: versions), GossipDigest.summary(of: bumped))

        let full = GossipDigest.full(versions, wantsReply: false).encode()
        XCTAssertThrowsError(try GossipDigest.decode([]))
        XCTAssertThrowsError(try GossipDigest.decode([9, 0, 0]), "unknown kind")
        XCTAssertThrowsError(try GossipDigest.decode(Array(full.dropLast())), "truncated")
        XCTAssertThrowsError(try GossipDigest.decode(full + [0]), "bytes after the end")
        XCTAssertThrowsError(try GossipDigest.decode([2, 0xFF, 0xFF]), "a count the bytes cannot hold")
        XCTAssertThrowsError(try GossipDigest.decode([0, 0, 1]), "short summary")
    }

    func testPayloadsStayUnderTheBudgetAndCarryEveryEntry() throws {
        let all = (1...300).map { i in
            entry(peer(i), version: UInt64(i), established: (1...20).map { peer(($0 * 7 + i) % 300 + 1) })
        }
        let payloads = TopologyUpdate.payloads(all, maxBytes: 8 * 1024)
        XCTAssertGreaterThan(payloads.count, 1)
        XCTAssertTrue(payloads.allSatisfy { $0.count <= 8 * 1024 })
        XCTAssertEqual(try payloads.flatMap { try TopologyUpdate.decode($0).peers }, all)
        XCTAssertEqual(TopologyUpdate.payloads([], maxBytes: 100), [])
        // An entry larger than the budget travels alone.
        XCTAssertEqual(try TopologyUpdate.payloads(Array(all.prefix(3)), maxBytes: 10).map { try TopologyUpdate.decode($0).peers.count }, [1, 1, 1])
    }

    func testLineConvergesAndAChangeCrossesEachLinkOnce() {
        var net = Net.line(5)
        for a in 1...5 { for b in 1...5 { XCTAssertTrue(net.holds(peer(a), peer(b)), "\(a) holds \(b)") } }

        // One change at the end of the line: four messages, one per link, and no echo.
        net.delivered = []
        net.take(peer(5), net.routers[peer(5)]!.setOwn(nickname: "renamed", connections: net.routers[peer(5)]!.topology.own.connections, now: net.now + 1))
        net.deliver()
        let gossip = net.delivered.filter { $0.send.type == .gossip }
        XCTAssertEqual(gossip.map { "\($0.from.value & 0xFF)>\($0.send.to.value & 0xFF)" }, ["5>4", "4>3", "3>2", "2>1"])
        for i in 1...4 { XCTAssertEqual(net.routers[peer(i)]!.topology.peers[peer(5)]?.nickname, "renamed") }
    }

    func testFullMeshForwardsNothingAndIdleSendsOnlySummaries() {
        var net = Net(6)
        for a in 1...6 { for b in (a + 1)...max(a + 1, 6) where b <= 6 { net.link(peer(a), peer(b)) } }
        net.deliver()
        net.run(seconds: 2)
        net.delivered = []
        net.take(peer(3), net.routers[peer(3)]!.setOwn(nickname: "x", connections: net.routers[peer(3)]!.topology.own.connections, now: net.now + 1))
        net.deliver()
        XCTAssertEqual(net.delivered.count, 5, "the owner tells its five neighbours and nobody forwards")

        net.delivered = []
        net.run(seconds: 30)
        XCTAssertTrue(net.delivered.allSatisfy { $0.send.type == .gossipDigest && $0.send.payload.first == 0 }, "idle: summaries only")
        XCTAssertEqual(net.delivered.count, 6 * 15, "one summary per router every 2 s")
    }

    func testOwnChangesAreCoalesced() throws {
        var net = Net(2)
        net.link(peer(1), peer(2))
        net.deliver()
        net.run(seconds: 1)
        net.delivered = []
        var g = net.routers[peer(1)]!
        var sends = 0
        for i in 0..<10 {
            sends += g.setOwn(nickname: "n\(i)", connections: g.topology.own.connections, now: net.now + 0.01 * Double(i)).sends.count
        }
        XCTAssertEqual(sends, 1, "the first change leaves at once, the rest wait")
        XCTAssertEqual(g.tick(now: net.now + 0.2).sends.filter { $0.type == .gossip }.count, 0)
        // The held-back update is due once the entry has been still for the interval (the last
        // change was at +0.09 s), for a timer rather than the tick.
        let due = try XCTUnwrap(g.forwardDue)
        XCTAssertEqual(due, net.now + 0.09 + GossipTimings().ownUpdateInterval, accuracy: 1e-9)
        XCTAssertTrue(g.forwardWaiting(now: due - 0.001).sends.isEmpty, "not before it is due")
        let later = g.forwardWaiting(now: due).sends.filter { $0.type == .gossip }
        XCTAssertNil(g.forwardDue)
        XCTAssertEqual(later.count, 1)
        XCTAssertEqual(try TopologyUpdate.decode(later[0].payload).peers.first?.nickname, "n9")
    }

    /// A router joining a mesh gains a link every few tenths of a second: its entry leaves at
    /// the first change, then every `ownUpdateHold` while the changes go on, and once more when
    /// they stop, not every `ownUpdateInterval`.
    func testOwnChangesInABurstLeaveEveryHold() throws {
        var net = Net(2)
        net.link(peer(1), peer(2))
        net.deliver()
        net.run(seconds: 1)
        var g = net.routers[peer(1)]!
        let timings = g.timings
        var sentAt: [Double] = [], lastSent: [UInt8] = [], t = net.now
        func count(_ effects: GossipEffects, _ at: Double) {
            guard let send = effects.sends.first(where: { $0.type == .gossip }) else { return }
            sentAt.append(at - net.now)
            lastSent = send.payload
        }
        // A change every 0.3 s for 5 s, the router ticking every 0.5 s meanwhile.
        var nextTick = t + 0.5
        for i in 0..<17 {
            count(g.setOwn(nickname: "n\(i)", connections: g.topology.own.connections, now: t), t)
            t += 0.3
            while nextTick <= t { count(g.tick(now: nextTick), nextTick); nextTick += 0.5 }
        }
        for _ in 0..<4 { count(g.tick(now: nextTick), nextTick); nextTick += 0.5 }
        XCTAssertEqual(sentAt.first, 0, "the first change leaves at once")
        for (a, b) in zip(sentAt, sentAt.dropFirst().dropLast()) {
            XCTAssertEqual(b - a, timings.ownUpdateHold, accuracy: 0.5, "held while changes go on: \(sentAt)")
        }
        XCTAssertLessThanOrEqual(sentAt.count, 5, "\(sentAt)")
        XCTAssertEqual(try TopologyUpdate.decode(lastSent).peers.first?.nickname, "n16", "the last change has left: \(sentAt)")
    }

    func testDepartedPeerIsRemovedAndStaleGossipCannotBringItBack() throws {
        // 1–2–3, and 4 joins 3. Then 4 stops: 3 drops it at once, 1 and 2 after the grace.
        var net = Net(4)
        net.link(peer(1), peer(2))
        net.link(peer(2), peer(3))
        net.link(peer(3), peer(4))
        net.deliver()
        net.run(seconds: 1)
        XCTAssertTrue(net.holds(peer(1), peer(4)))
        let stale = net.routers[peer(4)]!.topology.own
        net.unlink(peer(3), peer(4))
        net.routers[peer(4)] = nil
        net.links = net.links.filter { !$0.contains(peer(4)) }
        net.deliver()
        let grace = GossipTimings().unreachableGrace
        net.run(seconds: grace - 1)
        XCTAssertTrue(net.holds(peer(1), peer(4)), "kept through the grace")
        net.run(seconds: 2)
        for i in 1...3 { XCTAssertFalse(net.holds(peer(i), peer(4)), "router \(i) forgot 4") }
        XCTAssertEqual(net.routers[peer(1)]!.departed[peer(4)], PeerVersion(stale))

        // A router that was away pushes the stale entry: taken nowhere, sent nowhere.
        let effects = try net.routers[peer(1)]!.receive(from: peer(2), type: .gossip,
                                                         payload: TopologyUpdate(peers: [stale]).encode(), now: net.now)
        XCTAssertTrue(effects.sends.isEmpty)
        XCTAssertFalse(effects.topologyChanged)
        XCTAssertFalse(net.holds(peer(1), peer(4)))
        // Its digests do not ask for it either.
        var full = net.routers[peer(2)]!.heldVersions()
        full.append(PeerVersion(stale))
        let answer = try net.routers[peer(1)]!.receive(from: peer(2), type: .gossipDigest,
                                                        payload: GossipDigest.full(full, wantsReply: true).encode(), now: net.now)
        XCTAssertFalse(answer.sends.contains { $0.type == .gossipDigest }, "nothing to ask for")
        net.run(seconds: 20)
        for i in 1...3 { XCTAssertFalse(net.holds(peer(i), peer(4))) }
    }

    func testRemovedPeerReachableAgainIsTakenBack() throws {
        // 1–2 and 2–3; 2–3 breaks long enough for 1 to forget 3, then heals. 3's entry has not
        // changed meanwhile (same version): it is taken back because it is reachable.
        var net = Net.line(3)
        net.links.remove([peer(2), peer(3)])  // 2 and 3 have not noticed; 1 hears nothing
        var two = net.routers[peer(2)]!
        two.linkDown(peer(3))
        net.routers[peer(2)] = two
        net.ownChanged(peer(2))
        net.deliver()
        net.run(seconds: GossipTimings().unreachableGrace + 1)
        XCTAssertFalse(net.holds(peer(1), peer(3)))
        XCTAssertNotNil(net.routers[peer(1)]!.departed[peer(3)])
        // Heal: 2 relinks; 3's own entry still lists 2 at the same version.
        net.links.insert([peer(2), peer(3)])
        net.take(peer(2), net.routers[peer(2)]!.linkUp(peer(3), now: net.now))
        net.ownChanged(peer(2))
        net.deliver()
        net.run(seconds: 3)
        XCTAssertTrue(net.holds(peer(1), peer(3)), "a live peer is not locked out by its departure record")
        XCTAssertNil(net.routers[peer(1)]!.departed[peer(3)])
    }

    func testAntiEntropyRepairsALostMessage() throws {
        var net = Net.line(3)
        // 3 changes, but the message to 2 is lost.
        _ = net.routers[peer(3)]!.setOwn(nickname: "lost", connections: net.routers[peer(3)]!.topology.own.connections, now: net.now + 1)
        XCTAssertNotEqual(net.routers[peer(1)]!.topology.peers[peer(3)]?.nickname, "lost")
        net.run(seconds: 10)
        XCTAssertEqual(net.routers[peer(1)]!.topology.peers[peer(3)]?.nickname, "lost")
        XCTAssertEqual(net.routers[peer(2)]!.topology.peers[peer(3)]?.nickname, "lost")
    }

    func testForwardedChangesArrivingTogetherLeaveTogether() throws {
        // 1–2–3: 2 forwards 1's changes to 3. The first at once; two more within the forward
        // interval wait, and only the newest leaves.
        let net = Net.line(3)
        var two = net.routers[peer(2)]!
        var one = net.routers[peer(1)]!.topology.own
        var forwarded: [GossipSend] = []
        for i in 1...3 {
            one.version += 1
            one.nickname = "v\(i)"
            let t = net.now + 1 + 0.01 * Double(i)
            forwarded += try two.receive(from: peer(1), type: .gossip, payload: TopologyUpdate(peers: [one]).encode(), now: t).sends
        }
        XCTAssertEqual(try forwarded.map { try TopologyUpdate.decode($0.payload).peers.map(\.nickname) }, [["v1"]])
        let due = try XCTUnwrap(two.forwardDue)
        XCTAssertEqual(due, net.now + 1.01 + GossipTimings().forwardInterval, accuracy: 1e-9)
        XCTAssertTrue(two.forwardWaiting(now: due - 0.001).sends.isEmpty, "not before it is due")
        let later = two.forwardWaiting(now: due).sends
        XCTAssertEqual(later.map(\.to), [peer(3)])
        XCTAssertEqual(try later.map { try TopologyUpdate.decode($0.payload).peers.map(\.nickname) }, [["v3"]])
        XCTAssertNil(two.forwardDue)
    }

    func testAWaitingForwardSkipsNeighboursThatSentTheSameVersion() throws {
        // 1–2, 2–3, 2–4: 3 and 4 are 2's children in 1's tree. While 1's v3 waits at 2 to be
        // forwarded, 3 sends 2 that same version (views differ for a moment): it goes to 4 only.
        var net = Net(4)
        for p in [3, 4] { net.link(peer(2), peer(p)) }
        net.link(peer(1), peer(2))
        net.deliver()
        net.run(seconds: 1)
        var two = net.routers[peer(2)]!
        var one = net.routers[peer(1)]!.topology.own
        let t = net.now + 1
        one.version += 1
        XCTAssertEqual(try two.receive(from: peer(1), type: .gossip, payload: TopologyUpdate(peers: [one]).encode(), now: t).sends.map(\.to),
                       [peer(3), peer(4)], "the first change leaves at once")
        one.version += 1
        XCTAssertTrue(try two.receive(from: peer(1), type: .gossip, payload: TopologyUpdate(peers: [one]).encode(), now: t + 0.01).sends.isEmpty)
        XCTAssertTrue(try two.receive(from: peer(3), type: .gossip, payload: TopologyUpdate(peers: [one]).encode(), now: t + 0.02).sends.isEmpty)
        let due = try XCTUnwrap(two.forwardDue)
        XCTAssertEqual(two.forwardWaiting(now: due).sends.map(\.to), [peer(4)])
    }

    func testALinkWithinTheMeshSendsNoDigestAndAJoiningOneDoes() {
        var net = Net.line(3)
        // 1 and 3 reach each other through 2: a direct link between them needs no digests.
        XCTAssertTrue(net.routers[peer(1)]!.linkUp(peer(3), now: net.now).sends.isEmpty)
        // A router nobody can reach yet gets a full digest.
        var lone = Net(4)
        let sends = lone.routers[peer(1)]!.linkUp(peer(4), now: 0).sends
        XCTAssertEqual(sends.map(\.type), [.gossipDigest])
        XCTAssertNotEqual(sends.first?.payload.first, 0, "a full digest, not a summary")
    }

    func testMalformedGossipThrows() {
        var g = Gossip(own: entry(peer(1)))
        XCTAssertThrowsError(try g.receive(from: peer(2), type: .gossip, payload: [0xFF], now: 0))
        XCTAssertThrowsError(try g.receive(from: peer(2), type: .gossipDigest, payload: [7], now: 0))
    }
}
