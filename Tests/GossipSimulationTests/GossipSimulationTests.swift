import Foundation
import WeftTestSupport
import WeftWire
import XCTest
@testable import WeftMesh

/// A thousand routers of the real gossip code on a simulated network (MeshSimulator.swift):
/// convergence from seeds, the idle cost, the cost of 10 % churn, no resurrection of the
/// departed, repair after lost messages. Figures are printed; docs/benchmarks.md keeps them.
/// WEFT_SIM_ROUTERS overrides the size (the closing figures of docs/benchmarks.md use 1000).
final class GossipSimulationTests: XCTestCase {
    private var size: Int { ProcessInfo.processInfo.environment["WEFT_SIM_ROUTERS"].flatMap(Int.init) ?? 200 }

    /// Each router can reach one earlier router (the address on its command line) and about
    /// `degree` others at random: a mesh spread over sites where not every pair can connect.
    private func mesh(seed: UInt64, routers count: Int, degree: Int) -> MeshSimulator {
        var sim = MeshSimulator(seed: seed)
        var g = SplitMix64(seed: seed ^ 0x5eed)
        for _ in 0..<count { _ = sim.addRouter() }
        for i in 1..<count {
            sim.allow(i, Int.random(in: 0..<i, using: &g))
            for _ in 0..<(degree / 2) { sim.allow(i, Int.random(in: 0..<count, using: &g)) }
        }
        return sim
    }

    private func report(_ what: String, _ c: MeshSimulator.Counters, routers: Int, seconds: Double? = nil) {
        let perRouter = Double(c.bytes) / Double(routers)
        var line = "gossip-sim \(what): \(c.messages) messages (\(c.gossipMessages) gossip, \(c.fullDigests) full digests, "
            + "\(c.summaries) summaries; \(c.entries) entries; " + String(format: "%.2f", Double(c.ownVersions) / Double(routers)) + " own versions sent per router"
            + (MeshSimulator.countsHeld ? ", \(c.heldEntries) already held, \(c.ownUpdates) own updates" : "") + "), \(c.bytes) bytes, \(String(format: "%.0f", perRouter)) bytes per router"
        if let seconds { line += String(format: ", %.1f bytes/s per router", perRouter / seconds) }

        print(line)
    }

    func testMeshConvergesIdlesQuietlyAndForgetsTheDeparted() {
        let n = size
        var sim = mesh(seed: 12, routers: n, degree: 8)
        let started = Date()

        // Joins: all within 2 s (a burst), each naming one earlier router.
        sim.join(0, seed: nil)
        var g = SplitMix64(seed: 99)
        for i in 1..<n {
            sim.run(for: 2.0 / Double(n))
            let seed = sim.routers[i].reachable.filter { $0 < i }.randomElement(using: &g)!
            sim.join(i, seed: seed)
        }
        let joinedAt = sim.now
        let traces = ProcessInfo.processInfo.environment["WEFT_SIM_TRACE"] != nil
        guard let convergedAt = sim.run(for: 120, until: { sim in
            if traces { sim.printSpread(since: joinedAt) }
            return sim.converged() && sim.fullyLinked()
        }) else {
            return XCTFail("\(n) routers did not converge in 120 s of simulated time")
        }
        report("join of \(n) (converged \(String(format: "%.1f", convergedAt - joinedAt)) s after the last join, \(String(format: "%.1f", convergedAt)) s after the first)",
               sim.counters, routers: n)
        XCTAssertLessThan(convergedAt - joinedAt, 30, "convergence after the last join")

        // Idle: only summaries, and nothing else once everyone agrees.
        sim.resetCounters()
        sim.run(for: 60)
        report("idle for 60 s", sim.counters, routers: n, seconds: 60)
        XCTAssertEqual(sim.counters.gossipMessages, 0, "an idle mesh sends no entries")
        XCTAssertLessThan(Double(sim.counters.bytes) / Double(n) / 60, 50, "idle gossip per router")
        XCTAssertTrue(sim.converged())

        // Churn: 10 % stop at once (keeping the rest of the underlay connected).
        var stopped: [Int] = []
        var candidates = Array(1..<n).shuffled(using: &g)
        while stopped.count < n / 10, let i = candidates.popLast() {
            if sim.stillConnected(without: Set(stopped + [i])) { stopped.append(i) }
        }
        let names = Set(stopped.map(sim.name))
        sim.resetCounters()
        let stopAt = sim.now
        for i in stopped { sim.stop(i) }
        guard let forgottenAt = sim.run(for: 60, checkEvery: 0.5, until: { $0.holders(of: names) == 0 && $0.converged() }) else {
            return XCTFail("\(sim.holders(of: names)) routers still list the stopped ones after 60 s")
        }
        report("stop of \(stopped.count) (forgotten by all in \(String(format: "%.1f", forgottenAt - stopAt)) s)", sim.counters, routers: n - stopped.count)
        XCTAssertLessThanOrEqual(forgottenAt - stopAt, 30, "the removal bound of protocol.md §4.2")

        // Nobody brings them back, with anti-entropy running all the while.
        var resurrected = 0
        sim.run(for: 30) { sim in
            resurrected = max(resurrected, sim.holders(of: names))
            return false
        }
        XCTAssertEqual(resurrected, 0, "departed routers came back")

        // Lost messages: 50 links reset at once; they redial and anti-entropy repairs the rest.
        sim.resetCounters()
        let linked = sim.routers.indices.filter { sim.routers[$0].alive && !sim.routers[$0].links.isEmpty }
        for _ in 0..<50 {
            let a = linked.randomElement(using: &g)!
            if let b = sim.routers[a].links.randomElement(using: &g) { sim.dropLink(a, b) }
        }
        let resetAt = sim.now
        guard let repairedAt = sim.run(for: 60, until: { $0.converged() && $0.fullyLinked() }) else {
            return XCTFail("the mesh did not recover from 50 link resets in 60 s")
        }
        report("50 link resets (repaired in \(String(format: "%.1f", repairedAt - resetAt)) s)", sim.counters, routers: n - stopped.count)
        print("gossip-sim: \(n) routers simulated in \(String(format: "%.1f", Date().timeIntervalSince(started))) s of wall time")
    }
}

extension MeshSimulator {
    /// Whether the live routers other than `without` still form one connected underlay.
    func stillConnected(without: Set<Int>) -> Bool {
        let live = routers.indices.filter { routers[$0].alive && !without.contains($0) }
        guard let first = live.first else { return true }
        var seen: Set<Int> = [first]
        var stack = [first]
        while let i = stack.popLast() {
            for j in routers[i].reachable where routers[j].alive && !without.contains(j) && seen.insert(j).inserted { stack.append(j) }
        }
        return seen.count == live.count
    }

    /// WEFT_SIM_TRACE set: how far convergence has got, once a second after the last join (links
    /// missing, and the routers whose current entry not every router holds yet, with how many do).
    func printSpread(since start: Double) {
        let live = routers.indices.filter { routers[$0].alive }
        var lagging: [String] = []
        for j in live {
            let own = routers[j].gossip.topology.own
            let holders = live.filter { routers[$0].gossip.topology.peers[own.name]?.version == own.version }.count
            if holders < live.count { lagging.append("r\(j) v\(own.version): \(holders)") }
        }
        let unlinked = live.filter { i in !routers[i].reachable.allSatisfy { !routers[$0].alive || routers[i].links.contains($0) } }.count
        print(String(format: "gossip-sim +%.1f s: %d routers not fully linked, %d entries not everywhere ", now - start, unlinked, lagging.count)
              + lagging.prefix(12).joined(separator: ", "))
    }

    /// Every pair of live routers the underlay allows is linked.
    func fullyLinked() -> Bool {
        routers.indices.allSatisfy { i in
            !routers[i].alive || routers[i].reachable.allSatisfy { j in !routers[j].alive || routers[i].links.contains(j) }
        }
    }
}
