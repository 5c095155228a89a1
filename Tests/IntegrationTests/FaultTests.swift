// Faults injected on purpose into a live mesh, each printing its figures (`FIGURE fault-…`) and
// asserting what docs/operations.md "Under faults" promises.
import Foundation
import XCTest
@testable import WeftRouter

extension TestNet {
    /// Drops, inside host `index`'s namespace, the underlay packets to and from host `peer` that
    /// `match` selects (an nft expression, e.g. `meta l4proto udp` or `tcp dport 6783`); one
    /// table per host, removed by `unblock`.
    func block(_ index: Int, from peer: Int, _ matches: [String]) throws {
        let ns = host(index).namespace, other = host(peer).address
        try Shell.run(["ip", "netns", "exec", ns, "nft", "add table inet weftfault"])
        try Shell.run(["ip", "netns", "exec", ns, "nft", "add chain inet weftfault input { type filter hook input priority 0 ; }"])
        try Shell.run(["ip", "netns", "exec", ns, "nft", "add chain inet weftfault output { type filter hook output priority 0 ; }"])
        for match in matches {
            try Shell.run(["ip", "netns", "exec", ns, "nft", "add rule inet weftfault input ip saddr \(other) \(match) drop"])
            try Shell.run(["ip", "netns", "exec", ns, "nft", "add rule inet weftfault output ip daddr \(other) \(match) drop"])
        }
    }

    func unblock(_ index: Int) throws {
        try Shell.run(["ip", "netns", "exec", host(index).namespace, "nft", "delete table inet weftfault"])
    }

    /// The next hop router `index` forwards traffic for router `peer` through (status peers).
    func nextHop(_ index: Int, to peer: Int) throws -> String? {
        try peers(index).first { $0.nickname == nickname(peer) }?.nextHop
    }

    func peerName(_ index: Int) throws -> String { try status(index).name }
}

/// A steady ping in the background: `ping -D` prints each reply with its receive time, so the
/// replies that did not come say which packets were lost and when they were sent.
struct PingRun {
    let output: String
    let process: Process

    init(net: TestNet, from ns: String, to address: String, interval: Double, seconds: Int, name: String) throws {
        output = "\(net.directory)/\(name).txt"
        process = try net.startBackground(namespace: ns, ["ping", "-D", "-n", "-i", String(interval), "-W", "1",
                                                          "-w", "\(seconds)", address], output: output)
    }

    /// Receive time of each sequence number answered.
    func replies() -> [Int: Double] {
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        var result: [Int: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("[") && line.contains("icmp_seq=") {
            guard let close = line.firstIndex(of: "]"), let time = Double(line[line.index(after: line.startIndex)..<close]),
                  let seqPart = line.split(separator: " ").first(where: { $0.hasPrefix("icmp_seq=") }),
                  let seq = Int(seqPart.dropFirst("icmp_seq=".count)) else { continue }
            result[seq] = result[seq] ?? time
        }
        return result
    }

    /// The sequence numbers sent but never answered, each with the time it was sent (the
    /// previous answer's time plus the intervals since, at the rate ping kept, which is below
    /// the one asked for), how many were answered, and the packets per second sent.
    func losses() -> (lost: [(seq: Int, sent: Double)], answered: Int, last: Int, rate: Double) {
        let replies = replies()
        guard let first = replies.keys.min(), let last = replies.keys.max(), last > first else { return ([], 0, 0, 0) }
        let interval = (replies[last]! - replies[first]!) / Double(last - first)
        var lost: [(Int, Double)] = []
        var previous = (seq: first, time: replies[first]!)
        for seq in first...last {
            if let t = replies[seq] { previous = (seq, t); continue }
            lost.append((seq, previous.time + Double(seq - previous.seq) * interval))
        }
        return (lost, replies.count, last, 1 / interval)
    }
}

final class FaultTests: XCTestCase {
    private func mesh(_ count: Int) throws -> TestNet {
        let net = try TestNet(hosts: count)
        do {
            try net.launchStar(count)
            for i in 1...count { XCTAssertTrue(net.sleeveReady(i, peers: count - 1), "host \(i) sleeve") }
        } catch {
            net.cleanup()
            throw error
        }
        return net
    }

    private func figure(_ name: String, _ text: String) { print("FIGURE fault-\(name): \(text)") }

    /// UDP between routers 1 and 2 blocked for 20 s while their gossip TCP link lives: a ping at
    /// 50 pps between their workloads loses packets only until the routes leave the dead data
    /// plane (≤ 5 s), then goes through router 3; after the unblock the direct path returns
    /// within 3 s, losing nothing.
    func testDataPlaneDeadWhileGossipLivesReroutesThroughRelay() throws {
        try requireRoot()
        let net = try mesh(3)
        defer { net.cleanup() }
        let a = try net.attachWorkload(1, "10.32.7.1/24")
        _ = try net.attachWorkload(2, "10.32.7.2/24")
        XCTAssertEqual(try net.ping(from: a, "10.32.7.2").status, 0)
        let (name2, name3) = (try net.peerName(2), try net.peerName(3))
        XCTAssertEqual(try net.nextHop(1, to: 2), name2)

        let interval = 0.01, blocked = 20.0
        let ping = try PingRun(net: net, from: a, to: "10.32.7.2", interval: interval, seconds: 34, name: "ping-udp-block")
        sleep(3)
        let blockedAt = Date().timeIntervalSince1970
        try net.block(1, from: 2, ["meta l4proto udp"])
        var reroutedAt: Double?
        while Date().timeIntervalSince1970 < blockedAt + blocked {
            if reroutedAt == nil, (try? net.nextHop(1, to: 2)) == name3 { reroutedAt = Date().timeIntervalSince1970 }
            usleep(100_000)
        }
        let gossipDuring = try net.connection(1, to: 2)
        try net.unblock(1)
        let unblockedAt = Date().timeIntervalSince1970
        var backAt: Double?
        while backAt == nil, Date().timeIntervalSince1970 < unblockedAt + 10 {
            if (try? net.nextHop(1, to: 2)) == name2 { backAt = Date().timeIntervalSince1970 }
            usleep(100_000)
        }
        ping.process.waitUntilExit()

        let (lost, answered, last, rate) = ping.losses()
        let afterUnblock = lost.filter { $0.sent >= unblockedAt }
        let lateInBlock = lost.filter { $0.sent > blockedAt + 5 && $0.sent < unblockedAt }
        let lastLoss = lost.map(\.sent).max()
        figure("udp-block", String(format: "ping at %.0f pps, UDP 1↔2 blocked %.0f s: %d of %d packets lost (%.2f s of traffic)",
                                   rate, blocked, lost.count, last, Double(lost.count) / rate))
        figure("udp-block", String(format: "time to reroute through router 3: %.2f s by status, %.2f s by the last lost ping",
                                   (reroutedAt ?? .nan) - blockedAt, (lastLoss ?? blockedAt) - blockedAt))
        figure("udp-block", String(format: "direct route back %.2f s after the unblock; %d packets lost after it",
                                   (backAt ?? .nan) - unblockedAt, afterUnblock.count))
        XCTAssertGreaterThanOrEqual(rate, 50, "the ping's rate")
        XCTAssertGreaterThan(answered, Int(25 * rate), "the ping ran")
        XCTAssertEqual(gossipDuring?.state, .established, "the gossip link stayed up")
        XCTAssertNotNil(reroutedAt, "router 1 never routed router 2's traffic through router 3")
        XCTAssertLessThanOrEqual((reroutedAt ?? .infinity) - blockedAt, 5)
        XCTAssertEqual(lateInBlock.count, 0, "lost more than 5 s into the block: \(lateInBlock.prefix(5))")
        XCTAssertEqual(afterUnblock.count, 0, "lost after the unblock: \(afterUnblock.prefix(5))")
        XCTAssertNotNil(backAt, "the direct route did not come back")
        XCTAssertLessThanOrEqual((backAt ?? .infinity) - unblockedAt, 3)
        XCTAssertTrue(net.log(1).contains("data plane does not answer heartbeats"))
    }
}
