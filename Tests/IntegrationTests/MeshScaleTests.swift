// Gossip at mesh scale with real routers (#12): each router names only router 1 and learns the
// rest from gossip, on the routed underlay (one subnet a host, so the kernel's shared neighbour
// table measures nothing but Weft). WEFT_SCALE_ROUTERS=N runs the first test with N routers
// instead of 30 and keeps only the assertions that do not depend on the size (no time bounds):
// that is how docs/benchmarks.md "Mesh scale" was measured.
import Foundation
import XCTest
@testable import WeftRouter

final class MeshScaleTests: XCTestCase {
    private static let customSize = ProcessInfo.processInfo.environment["WEFT_SCALE_ROUTERS"].flatMap(Int.init)

    /// Nickname → connection id of the established connections of router `index` to `among`.
    private func connectionIds(_ net: TestNet, _ index: Int, among: [Int]) throws -> [String: String] {
        let nicknames = Set(among.map(net.nickname))
        var ids: [String: String] = [:]
        for c in try net.connections(index) where c.state == .established && nicknames.contains(c.nickname ?? "") {
            ids[c.nickname!] = c.connectionId ?? "?"
        }
        return ids
    }

    /// The fewest links any router of `indexes` has to the others (established and encrypted).
    private func fewestLinks(_ net: TestNet, _ indexes: [Int]) -> Int {
        let nicknames = Set(indexes.map(net.nickname))
        return indexes.map { index in
            ((try? net.connections(index)) ?? []).filter {
                $0.state == .established && $0.encrypted && nicknames.contains($0.nickname ?? "")
            }.count
        }.min() ?? 0
    }

    /// When the last of the links among `indexes` came up (their `since`, whole seconds): the
    /// moment the mesh was full, without the lag of polling a hundred busy routers for it.
    private func lastLinkUp(_ net: TestNet, _ indexes: [Int]) -> Date? {
        let nicknames = Set(indexes.map(net.nickname))
        let format = ISO8601DateFormatter()
        return indexes.flatMap { index in
            ((try? net.connections(index)) ?? []).filter { $0.state == .established && nicknames.contains($0.nickname ?? "") }
                .compactMap { $0.since.flatMap(format.date(from:)) }
        }.max()
    }

    /// Polls `condition` once a second (polling 30+ control sockets faster only loads the
    /// machine being measured) until it holds; returns the seconds it took, nil on timeout.
    private func measure(timeout: TimeInterval, _ condition: () -> Bool) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if condition() { return Date().timeIntervalSince(start) }
            sleep(1)
        }
        return condition() ? Date().timeIntervalSince(start) : nil
    }

    /// The routers of `among` whose topology lists one of `names`.
    private func listing(_ net: TestNet, _ names: Set<String>, among: [Int]) -> [Int: [String]] {
        var result: [Int: [String]] = [:]
        for index in among {
            guard let peers = try? net.peers(index) else { result[index] = ["<no status>"]; continue }
            let listed = peers.filter { names.contains($0.name) }.map(\.nickname)
            if !listed.isEmpty { result[index] = listed }
        }
        return result
    }

    private func flapReport(_ before: [Int: [String: String]], _ after: [Int: [String: String]]) -> String {
        before.keys.sorted().compactMap { index in
            let (b, a) = (before[index]!, after[index] ?? [:])
            guard a != b else { return nil }
            let changed = Set(b.keys).union(a.keys).filter { b[$0] != a[$0] }.sorted()
            return "h\(index): " + changed.map { "\($0) \(b[$0] ?? "-") → \(a[$0] ?? "-")" }.joined(separator: ", ")
        }.joined(separator: "\n")
    }

    /// Idle gossip bytes per second each router sends, averaged over `indexes`, from the
    /// per-connection `gossipBytes` counters of status.
    private func idleGossipRate(_ net: TestNet, _ indexes: [Int], seconds: UInt32) -> (sent: Double, received: Double) {
        func totals() -> (UInt64, UInt64) {
            indexes.reduce((0, 0)) { sum, index in
                ((try? net.connections(index)) ?? []).reduce(sum) { ($0.0 + ($1.gossipBytes?.sent ?? 0), $0.1 + ($1.gossipBytes?.received ?? 0)) }
            }
        }
        let t0 = Date(), before = totals()
        sleep(seconds)
        let after = totals(), elapsed = Date().timeIntervalSince(t0)
        // Links that closed in between would make this negative; none should.
        let n = Double(indexes.count) * elapsed
        return (Double(Int64(after.0) - Int64(before.0)) / n, Double(Int64(after.1) - Int64(before.1)) / n)
    }

    /// CPU % (of one core) over `seconds` and RSS of each router, from /proc.
    private func processFigures(_ net: TestNet, _ indexes: [Int], seconds: UInt32) -> (cpu: [Double], rssKiB: [Int]) {
        let pids = indexes.compactMap { net.router($0)?.processIdentifier }
        func ticks(_ pid: Int32) -> Int {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return 0 }
            // Fields after "(comm)": state is field 3, utime 14, stime 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
        }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        let t0 = Date(), before = pids.map(ticks)
        sleep(seconds)
        let after = pids.map(ticks), elapsed = Date().timeIntervalSince(t0)
        let cpu = zip(before, after).map { Double($1 - $0) / hz / elapsed * 100 }
        let rss = pids.map { pid -> Int in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return (cpu, rss)
    }

    /// Gossip bytes each router sent so far and handshake failures by reason (summed), from
    /// /metrics; nil when it cannot be scraped (no prometheus_client).
    private func metricsFigures(_ net: TestNet, _ indexes: [Int]) -> (sent: [Int: Double], failures: [String: Int])? {
        var sent: [Int: Double] = [:], failures: [String: Int] = [:]
        for index in indexes {
            guard let samples = try? net.scrape(index, "http://127.0.0.1:6782/metrics") else { return nil }
            sent[index] = samples.values("weft_gossip_bytes_total", ["direction": "tx"]).reduce(0, +)
            for s in samples where s.name == "weft_handshake_failures_total" && s.value > 0 {
                failures[s.labels["reason"] ?? "?", default: 0] += Int(s.value)
            }
        }
        return (sent, failures)
    }

    private func printFigures(_ net: TestNet, _ indexes: [Int], label: String) {
        let gossip = idleGossipRate(net, indexes, seconds: 10)
        let process = processFigures(net, indexes, seconds: 10)
        let cpu = process.cpu.reduce(0, +) / Double(max(1, process.cpu.count))
        let rss = Double(process.rssKiB.reduce(0, +)) / Double(max(1, process.rssKiB.count)) / 1024
        print(label + String(format: ": idle gossip per router %.0f B/s sent, %.0f B/s received; CPU per router %.2f %% (max %.2f %%); RSS per router %.1f MiB (max %.1f MiB)",
                     gossip.sent, gossip.received, cpu, process.cpu.max() ?? 0, rss, Double(process.rssKiB.max() ?? 0) / 1024))
    }

    /// 30 routers (or WEFT_SCALE_ROUTERS) converge to a full mesh; 5 stopped are forgotten by
    /// all within the removal bound with no flap among the rest; one restarted rejoins without
    /// flaps.
    func testMeshConvergesAndChurnIsQuiet() throws {
        try requireRoot()
        let count = Self.customSize ?? 30
        let bounded = Self.customSize == nil
        let net = try TestNet(hosts: count, routed: true)
        defer { net.cleanup() }
        let all = Array(1...count)
        let start = Date()
        // Each namespace has its own loopback: every router serves /metrics on the same address.
        try net.launchStar(count, extraArgs: ["--metrics-addr", "127.0.0.1:6782"])
        let converged = measure(timeout: bounded ? 90 : 600) { fewestLinks(net, all) == count - 1 }
        let convergence = Date().timeIntervalSince(start)
        let lastUp = converged == nil ? nil : lastLinkUp(net, all)
        print(String(format: "%d routers: full mesh after %.1f s from the first launch", count, convergence)
              + (converged == nil ? " NOT REACHED (fewest links \(fewestLinks(net, all)) of \(count - 1))"
                 : String(format: " by polling; the last of its links came up %.0f s after the first launch", lastUp.map { $0.timeIntervalSince(start) } ?? -1)))
        XCTAssertNotNil(converged, "no full mesh of \(count): fewest links \(fewestLinks(net, all))\nh1 log tail:\n\(net.log(1).suffix(3000))")
        guard converged != nil else { return }
        if bounded { XCTAssertLessThan(convergence, 60, "full mesh of 30 took longer than 60 s") }
        sleep(3)  // let the last own-entry updates settle before measuring idle
        printFigures(net, all, label: "\(count) routers idle")
        let joinCost = metricsFigures(net, all)
        if let joinCost {
            print(String(format: "%d routers: %.0f kB of gossip sent per router from launch to idle; ", count,
                         joinCost.sent.values.reduce(0, +) / Double(count) / 1000)
                  + "handshake failures (all routers) \(joinCost.failures.sorted { $0.key < $1.key })")
        }

        let stopped = Array(count - 4...count), remaining = Array(1...count - 5)
        let stoppedNames = Set(try stopped.map { try net.status($0).name })
        var before: [Int: [String: String]] = [:]
        for index in remaining { before[index] = try connectionIds(net, index, among: remaining) }
        XCTAssertTrue(before.values.allSatisfy { $0.count == remaining.count - 1 })
        let stopStart = Date()
        for index in stopped { net.kill(index, signal: SIGTERM) }
        let removal = measure(timeout: 60) { listing(net, stoppedNames, among: remaining).isEmpty }
        let removalTime = Date().timeIntervalSince(stopStart)
        print(removal != nil
              ? String(format: "%d stopped: forgotten by all %d remaining %.1f s after the first SIGTERM", stopped.count, remaining.count, removalTime)
              : "\(stopped.count) stopped: still listed 60 s later by \(listing(net, stoppedNames, among: remaining))")
        XCTAssertNotNil(removal, "stopped routers still listed: \(listing(net, stoppedNames, among: remaining))")
        // The bound: 25 s unreachable grace (Sources/WeftMesh/Gossip.swift) plus polling.
        if removal != nil && bounded { XCTAssertLessThanOrEqual(removalTime, 40, "removal slower than the 40 s bound") }
        if let joinCost, let churn = metricsFigures(net, remaining) {
            let delta = remaining.map { churn.sent[$0]! - (joinCost.sent[$0] ?? 0) }.reduce(0, +) / Double(remaining.count)
            print(String(format: "%d stopped: %.1f kB of gossip sent per remaining router between the scrape before the stops and the one after the removal (keepalives included)",
                         stopped.count, delta / 1000))
        }
        var after: [Int: [String: String]] = [:]
        for index in remaining { after[index] = try connectionIds(net, index, among: remaining) }
        XCTAssertEqual(before, after, "links among the remaining routers flapped:\n\(flapReport(before, after))")

        // The first stopped router comes back with its data dir: it rejoins, nobody else flaps.
        let back = stopped[0], rejoined = remaining + [back]
        let restart = Date()
        try net.launch(back, peers: [1])
        let rejoin = measure(timeout: bounded ? 60 : 300) { fewestLinks(net, rejoined) == rejoined.count - 1 }
        print(rejoin.map { String(format: "restarted h%d: full mesh of %d again after %.1f s", back, rejoined.count, $0) }
              ?? "restarted h\(back): no full mesh after \(Int(Date().timeIntervalSince(restart))) s")
        XCTAssertNotNil(rejoin, "h\(back) did not rejoin: fewest links \(fewestLinks(net, rejoined)) of \(rejoined.count - 1)")
        var afterRejoin: [Int: [String: String]] = [:]
        for index in remaining { afterRejoin[index] = try connectionIds(net, index, among: remaining) }
        XCTAssertEqual(before, afterRejoin, "links among the remaining routers flapped on the rejoin:\n\(flapReport(before, afterRejoin))")
        // The stopped routers that stayed away are not brought back by the one that returned.
        let stillGone = stoppedNames.subtracting([try net.status(back).name])
        sleep(3)
        XCTAssertEqual(listing(net, stillGone, among: rejoined), [:], "routers still stopped are listed again after the rejoin")
    }

    /// A router cut off while a peer leaves, and healed once the others forgot that peer, does
    /// not bring it back with what it still holds.
    func testPartitionedRouterDoesNotResurrectDepartedPeer() throws {
        try requireRoot()
        try XCTSkipIf(Self.customSize != nil, "WEFT_SCALE_ROUTERS measures the mesh test only")
        let count = 6, cut = 6, leaver = 5
        let net = try TestNet(hosts: count, routed: true)
        defer { net.cleanup() }
        let all = Array(1...count)
        try net.launchStar(count)
        XCTAssertNotNil(measure(timeout: 60) { fewestLinks(net, all) == count - 1 }, "no full mesh of \(count)")
        let leaverName = try net.status(leaver).name
        let others = all.filter { $0 != cut && $0 != leaver }

        try net.setUnderlay(cut, up: false)
        let partitioned = Date()
        net.kill(leaver, signal: SIGTERM)
        // The others drop their links to the cut-off router at once (as if their idle timers had
        // fired first); it keeps believing in all of its links, the one to the leaver included,
        // for the 20 s idle timeout. Without this the others would reach the leaver through the
        // cut-off router's last entry until their own idle timeout, and the cut-off router would
        // have dropped the leaver too by the time they forget it: nothing stale left to offer.
        for index in others { try net.resetConnections(index, to: cut) }
        let forgotten = measure(timeout: 35) { listing(net, [leaverName], among: others).isEmpty }
        XCTAssertNotNil(forgotten, "h\(leaver) still listed: \(listing(net, [leaverName], among: others))")
        // The point of the test: the cut-off router still holds the departed peer when it heals.
        let cutHeld = !listing(net, [leaverName], among: [cut]).isEmpty
        try net.setUnderlay(cut, up: true)
        print(String(format: "partition healed after %.1f s (the others forgot h%d after %.1f s); ", Date().timeIntervalSince(partitioned), leaver, forgotten ?? -1)
              + "the cut-off router \(cutHeld ? "still listed" : "had already dropped") it")
        XCTAssertTrue(cutHeld, "the cut-off router no longer held the departed peer at the heal: the test proves nothing")

        // Nobody lists the departed peer again, at any sample, while the healed router catches up.
        var resurrected: [String] = []
        for second in 1...15 {
            sleep(1)
            let seen = listing(net, [leaverName], among: others)
            if !seen.isEmpty { resurrected.append("\(second) s after the heal: \(seen.keys.sorted().map { "h\($0)" })") }
        }
        XCTAssertEqual(resurrected, [], "the departed peer came back:\n\(resurrected.joined(separator: "\n"))")
        XCTAssertNotNil(measure(timeout: 30) { listing(net, [leaverName], among: [cut]).isEmpty },
                        "the healed router still lists h\(leaver) 45 s after the heal")
        XCTAssertNotNil(measure(timeout: 30) { fewestLinks(net, others + [cut]) == others.count }, "no full mesh after the heal")
    }
}
