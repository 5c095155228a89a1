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
    /// A full mesh of 3 routers with workloads `prefix`.1 on router 1 and `prefix`.2 on router 2
    /// that ping each other.
    private func meshWithPair(workloads prefix: String) throws -> (net: TestNet, a: String, b: String) {
        let net = try TestNet(hosts: 3)
        do {
            try net.launchStar(3)
            for i in 1...3 { XCTAssertTrue(net.sleeveReady(i, peers: 2), "host \(i) sleeve") }
            let a = try net.attachWorkload(1, "\(prefix).1/24")
            let b = try net.attachWorkload(2, "\(prefix).2/24")
            XCTAssertEqual(try net.ping(from: a, "\(prefix).2").status, 0)
            return (net, a, b)
        } catch {
            net.cleanup()
            throw error
        }
    }

    /// Routers on hosts 1 and 2 (with `extraArgs`), workloads `prefix`.1 and `prefix`.2 that
    /// ping each other, and host 3 left without a router for an attacker.
    private func pairAndAttacker(_ extraArgs: [String], workloads prefix: String) throws -> (net: TestNet, workload: String, attacker: String) {
        let net = try TestNet(hosts: 3)
        do {
            try net.launch(1, extraArgs: extraArgs)
            try net.launch(2, peers: [1], extraArgs: extraArgs)
            XCTAssertTrue(net.sleeveReady(1, peers: 1) && net.sleeveReady(2, peers: 1))
            let a = try net.attachWorkload(1, "\(prefix).1/24")
            _ = try net.attachWorkload(2, "\(prefix).2/24")
            XCTAssertEqual(try net.ping(from: a, "\(prefix).2").status, 0)
            return (net, a, net.host(3).namespace)
        } catch {
            net.cleanup()
            throw error
        }
    }

    private func figure(_ name: String, _ text: String) { print("FIGURE fault-\(name): \(text)") }

    /// UDP between routers 1 and 2 blocked for 20 s while their gossip TCP link lives: a ping at
    /// 50 pps between their workloads loses packets only until the routes leave the dead data
    /// plane (≤ 5 s), then goes through router 3; after the unblock the direct path returns
    /// within 3 s, losing nothing.
    func testDataPlaneDeadWhileGossipLivesReroutesThroughRelay() throws {
        try requireRoot()
        let (net, a, _) = try meshWithPair(workloads: "10.32.7")
        defer { net.cleanup() }
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

    /// `kill -9` of router 1 in the middle of an iperf3 transfer from its workload, then a
    /// restart on the same data dir: nothing it left (TAP, bridge, control socket, UDP and TCP
    /// ports) blocks the start, its workload pings router 2's again within seconds, and the
    /// link between routers 2 and 3 never drops.
    func testKill9DuringBulkTransferAndRestart() throws {
        try requireRoot()
        let (net, a, b) = try meshWithPair(workloads: "10.32.8")
        defer { net.cleanup() }
        let link23 = try XCTUnwrap(try net.connection(2, to: 3))
        let name1 = try net.peerName(1)

        let server = try net.startBackground(namespace: b, ["iperf3", "-s", "-1", "-B", "10.32.8.2"], output: "\(net.directory)/iperf-kill-server.log")
        usleep(300_000)
        let client = try net.startBackground(namespace: a, ["iperf3", "-c", "10.32.8.2", "-t", "30"], output: "\(net.directory)/iperf-kill.log")
        sleep(3)
        let killedAt = Date()
        net.kill(1)
        let log1Before = net.log(1).utf8.count
        usleep(500_000)
        let restartedAt = Date()
        try net.launch(1)
        var pingAt: Date?
        while pingAt == nil, Date().timeIntervalSince(restartedAt) < 30 {
            if try net.ping(from: a, "10.32.8.2", count: 1, extra: ["-W", "1"]).status == 0 { pingAt = Date() }
        }
        net.stopBackground(client)
        net.stopBackground(server)
        let startLog = String(net.log(1).dropFirst(log1Before))
        let link23After = try net.connection(2, to: 3)
        let linkBack = net.waitUntil(timeout: 20) { try net.connection(2, to: 1)?.state == .established && net.connection(3, to: 1)?.state == .established }
        figure("kill9", String(format: "router 1 killed -9 during iperf3, restarted %.1f s later on the same data dir: its workload pings again %.2f s after the restart (%.2f s after the kill)",
                               restartedAt.timeIntervalSince(killedAt), (pingAt ?? .distantFuture).timeIntervalSince(restartedAt),
                               (pingAt ?? .distantFuture).timeIntervalSince(killedAt)))
        figure("kill9", "link 2-3 kept: \(link23After?.connectionId == link23.connectionId && link23After?.since == link23.since); restart errors or warnings: \(startLog.split(separator: "\n").filter { $0.contains("error") || $0.contains("warning") }.count)")
        XCTAssertNotNil(pingAt, "router 1's workload never pinged again; its log:\n\(startLog.suffix(3000))")
        XCTAssertLessThan((pingAt ?? .distantFuture).timeIntervalSince(restartedAt), 10)
        XCTAssertTrue(net.router(1)?.isRunning == true, "the restarted router exited:\n\(startLog.suffix(3000))")
        XCTAssertEqual(try net.peerName(1), name1, "the same data dir keeps the peer name")
        XCTAssertTrue(linkBack, "routers 2 and 3 did not reconnect to router 1")
        XCTAssertEqual(link23After?.connectionId, link23.connectionId, "the link 2-3 was replaced")
        XCTAssertEqual(link23After?.since, link23.since, "the link 2-3 flapped")
    }

    /// TCP 6783 between routers 1 and 2 blocked for 40 s with UDP open, a ping at 50 pps between
    /// their workloads: the sleeve carries on while the gossip link waits out its idle timeout
    /// (20 s), then the traffic goes through router 3; after the unblock the link is dialled
    /// again within its backoff and the direct route returns. Nothing is lost throughout.
    func testGossipPortBlockedKeepsTrafficFlowing() throws {
        try requireRoot()
        let (net, a, _) = try meshWithPair(workloads: "10.32.9")
        defer { net.cleanup() }
        let (name2, name3) = (try net.peerName(2), try net.peerName(3))

        let blocked = 40.0
        let ping = try PingRun(net: net, from: a, to: "10.32.9.2", interval: 0.01, seconds: Int(blocked) + 30, name: "ping-tcp-block")
        sleep(2)
        let blockedAt = Date().timeIntervalSince1970
        try net.block(1, from: 2, ["tcp dport 6783", "tcp sport 6783"])
        var droppedAt: Double?, relayedAt: Double?
        while Date().timeIntervalSince1970 < blockedAt + blocked {
            let now = Date().timeIntervalSince1970
            if droppedAt == nil, (try? net.connection(1, to: 2)) == nil { droppedAt = now }
            if relayedAt == nil, (try? net.nextHop(1, to: 2)) == name3 { relayedAt = now }
            usleep(200_000)
        }
        try net.unblock(1)
        let unblockedAt = Date().timeIntervalSince1970
        var linkedAt: Double?, directAt: Double?
        while directAt == nil, Date().timeIntervalSince1970 < unblockedAt + 75 {
            let now = Date().timeIntervalSince1970
            if linkedAt == nil, (try? net.connection(1, to: 2))?.state == .established { linkedAt = now }
            if (try? net.nextHop(1, to: 2)) == name2 { directAt = now }
            usleep(200_000)
        }
        net.stopBackground(ping.process)
        let (lost, answered, last, rate) = ping.losses()
        figure("tcp-block", String(format: "ping at %.0f pps, TCP 6783 1↔2 blocked %.0f s: %d of %d packets lost",
                                   rate, blocked, lost.count, last))
        figure("tcp-block", String(format: "gossip link 1-2 closed %.1f s into the block (idle timeout); traffic through router 3 from %.1f s",
                                   (droppedAt ?? .nan) - blockedAt, (relayedAt ?? .nan) - blockedAt))
        figure("tcp-block", String(format: "after the unblock: link 1-2 established again in %.1f s, direct route back in %.1f s",
                                   (linkedAt ?? .nan) - unblockedAt, (directAt ?? .nan) - unblockedAt))
        XCTAssertGreaterThan(answered, Int(blocked * rate), "the ping ran")
        XCTAssertNotNil(droppedAt, "the link outlived the block")
        XCTAssertNotNil(linkedAt, "link 1-2 did not come back")
        XCTAssertNotNil(directAt, "the direct route did not come back")
        XCTAssertLessThanOrEqual(lost.count, Int(rate), "lost more than 1 s of traffic: \(lost.prefix(5))")
    }

    /// A sender of forged sleeve datagrams, run in a namespace with no router (python3, raw
    /// IPv4 sockets so that a replay carries the real sender's address and port): `random`
    /// datagrams of 1…1400 random bytes (half of them behind a real header, so they reach the
    /// tag check), then the captured datagrams replayed in turn until `replays` have gone, paced
    /// at about 10,000 a second so that the receiver's socket buffer never overflows.
    static let forgerScript = """
        import os, random, socket, struct, sys, time
        pcap, target, random_count, replay_count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        data = open(pcap, 'rb').read()
        packets, off = [], 24
        while off + 16 <= len(data):
            n = struct.unpack('<I', data[off + 8:off + 12])[0]
            frame = data[off + 16:off + 16 + n]
            off += 16 + n
            if len(frame) > 42 and frame[12:14] == b'\\x08\\x00' and frame[23] == 17:
                ihl = (frame[14] & 15) * 4
                ip = frame[14:]
                packets.append((socket.inet_ntoa(ip[12:16]), struct.unpack('!H', ip[ihl:ihl + 2])[0], ip[ihl + 8:]))
        assert packets, 'no sleeve datagrams captured'
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        def send(src, sport, payload):
            udp = struct.pack('!HHHH', sport, 6783, 8 + len(payload), 0) + payload
            hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(target))
            raw.sendto(hdr + udp, (target, 0))
        rng = random.Random(14)
        sent = 0
        for i in range(random_count + replay_count):
            if i < random_count:
                body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 1400)))
                if i % 2:
                    body = packets[i % len(packets)][2][:16] + body
                send('198.18.0.99', 40000 + i % 1000, body)
            else:
                src, sport, payload = packets[i % len(packets)]
                send(src, sport, payload)
            sent += 1
            if sent % 100 == 0:
                time.sleep(0.01)
        print('sent', sent, 'captured', len(packets))
        """

    /// 100,000 forged datagrams at router 2's sleeve port (50,000 random, 50,000 replays of
    /// router 1's real ones) during a ping from router 1's workload: nothing delivered twice,
    /// nothing lost, every forged datagram counted by reason in `weft_sleeve_drops_total`.
    func testRandomAndReplayedDatagramsAreDroppedAndCounted() throws {
        try requireRoot()
        let probe = try Shell.run(["python3", "-c", "import prometheus_client.parser"], check: false)
        try XCTSkipIf(probe.status != 0, "python3 prometheus_client is not installed (scripts/install-deps.sh installs it)")
        let (net, a, attacker) = try pairAndAttacker(["--metrics-addr", "127.0.0.1:6782"], workloads: "10.32.10")
        defer { net.cleanup() }
        try Shell.run(["ip", "-n", attacker, "addr", "add", "198.18.0.99/24", "dev", "eth0"])

        // Real datagrams of router 1 to router 2, captured where the attacker sits.
        let capture = try net.startCapture("sleeve-real", namespace: attacker, interface: "eth0",
                                           filter: "udp and src host \(net.host(1).address) and dst port 6783")
        // With ageing 0 the underlay's bridge learns no MAC and floods every frame, so host 3
        // sees router 1's datagrams to router 2 (as an attacker on a shared segment would).
        try Shell.run(["ip", "-n", net.switchNamespace, "link", "set", "br0", "type", "bridge", "ageing_time", "0"])
        _ = try net.ping(from: a, "10.32.10.2", count: 10, extra: ["-i", "0.05"])
        net.stopCapture(capture)
        try Shell.run(["ip", "-n", net.switchNamespace, "link", "set", "br0", "type", "bridge", "ageing_time", "30000"])

        func drops() throws -> [String: Double] {
            var byReason: [String: Double] = [:]
            for s in try net.scrape(2, "http://127.0.0.1:6782/metrics") where s.name == "weft_sleeve_drops_total" {
                byReason[s.labels["reason"] ?? "?", default: 0] += s.value
            }
            return byReason
        }
        func kernelDrops() throws -> Int {
            let snmp = try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "cat", "/proc/net/snmp"]).output
            let udp = snmp.split(separator: "\n").filter { $0.hasPrefix("Udp:") }
            guard udp.count == 2 else { return -1 }
            let keys = udp[0].split(separator: " "), values = udp[1].split(separator: " ")
            return keys.firstIndex(of: "RcvbufErrors").map { Int(values[$0]) ?? -1 } ?? -1
        }
        let before = try drops(), kernelBefore = try kernelDrops()
        let ping = try PingRun(net: net, from: a, to: "10.32.10.2", interval: 0.01, seconds: 16, name: "ping-forged")
        sleep(1)
        let script = "\(net.directory)/forge.py"
        try Self.forgerScript.write(toFile: script, atomically: true, encoding: .utf8)
        let started = Date()
        let sender = try Shell.run(["ip", "netns", "exec", attacker, "python3", script, capture.path, net.host(2).address, "50000", "50000"], check: false)
        let sendSeconds = Date().timeIntervalSince(started)
        ping.process.waitUntilExit()
        let after = try drops(), kernelAfter = try kernelDrops()
        let text = (try? String(contentsOfFile: ping.output, encoding: .utf8)) ?? ""
        let duplicates = text.components(separatedBy: "DUP!").count - 1
        let (lost, answered, last, rate) = ping.losses()
        var delta: [String: Int] = [:]
        for (reason, value) in after { delta[reason] = Int(value - (before[reason] ?? 0)) }
        let counted = delta.values.reduce(0, +)
        figure("forged", String(format: "100000 forged datagrams in %.1f s (%@): counted %d by reason %@; kernel socket drops %d",
                                sendSeconds, sender.output.trimmingCharacters(in: .whitespacesAndNewlines), counted,
                                delta.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                                kernelAfter - kernelBefore))
        figure("forged", String(format: "ping at %.0f pps meanwhile: %d of %d lost, %d delivered twice", rate, lost.count, last, duplicates))
        XCTAssertEqual(sender.status, 0, sender.output)
        XCTAssertGreaterThan(answered, 10 * Int(rate))
        XCTAssertEqual(duplicates, 0)
        XCTAssertEqual(lost.count, 0, "\(lost.prefix(5))")
        XCTAssertEqual(counted, 100_000, "every forged datagram counted once")
        XCTAssertGreaterThanOrEqual(delta["replay"] ?? 0, 50_000, "every replay counted as a replay")
    }

    /// An attacker on the gossip port (python3, from `sources` addresses in turn): `burst`
    /// connections at once, then `idle` connections that send nothing and are held for 12 s
    /// (past the 10 s handshake limit), then `unknown` preambles naming a PSK id no router has,
    /// each followed by a HANDSHAKE_INIT, in rounds of one per address. Prints one JSON line:
    /// how many of each were served a handshake, refused with REFUSE 9 (rate limit, half-open
    /// cap), closed by the router, refused with code 1.
    static let handshakeFloodScript = """
        import json, os, select, socket, struct, sys, time
        target, sources = sys.argv[1], sys.argv[2].split(',')
        burst, idle, unknown = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        def dial(i):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((sources[i % len(sources)], 0))
            s.setblocking(False)
            s.connect_ex((target, 6783))
            return s
        def watch(socks, seconds):
            # Per socket: bytes read, and whether the router closed it, within `seconds`.
            got = {s: b'' for s in socks}; closed = set(); end = time.time() + seconds
            while time.time() < end and len(closed) < len(socks):
                open_ = [s for s in socks if s not in closed]
                r, _, _ = select.select(open_, [], [], 0.05)
                for s in r:
                    try:
                        d = s.recv(4096)
                    except OSError:
                        d = b''
                    if d: got[s] += d
                    else: closed.add(s)
            return got, closed
        def refused(d, code):
            # Our preamble (15 bytes), then a REFUSE frame: u32 length, type 4, code.
            return len(d) >= 21 and d[:4] == b'WEFT' and d[19] == 4 and d[20] == code
        def served(d):
            # Given a preamble and not refused at once (over the rate limit or the half-open cap
            # a connection hears REFUSE 9 after the preamble).
            return d.startswith(b'WEFT') and not refused(d, 9)
        out = {}
        socks = [dial(i) for i in range(burst)]
        got, closed = watch(socks, 2)
        out['burst_served'] = sum(1 for s in socks if served(got[s]))
        out['burst_refused_code9'] = sum(1 for s in socks if refused(got[s], 9))
        out['burst_closed'] = sum(1 for s in socks if s in closed and not got[s])
        for s in socks: s.close()
        time.sleep(1)
        socks = [dial(i) for i in range(idle)]
        got, closed = watch(socks, 3)
        out['idle_served'] = sum(1 for s in socks if served(got[s]))
        out['idle_refused_code9'] = sum(1 for s in socks if refused(got[s], 9))
        out['idle_closed_at_once'] = len(closed)
        waiting = [s for s in socks if served(got[s])]
        got2, closed2 = watch(waiting, 9.5)
        out['idle_closed_by_timeout'] = len(closed2)
        for s in socks: s.close()
        time.sleep(1)
        preamble = b'WEFT' + bytes([2, 2, 1]) + os.urandom(8)
        init = bytes([1]) + os.urandom(48)
        frame = struct.pack('!I', len(init)) + init
        refused_1 = 0; other = {}
        for start in range(0, unknown, len(sources)):
            socks = [dial(i) for i in range(start, min(unknown, start + len(sources)))]
            select.select([], socks, [], 2)
            for s in socks:
                try: s.send(preamble + frame)
                except OSError: pass
            got, closed = watch(socks, 3)
            for s in socks:
                d = got[s]
                if refused(d, 1): refused_1 += 1
                else: other[repr(d[15:21])] = other.get(repr(d[15:21]), 0) + 1
                s.close()
            time.sleep(0.1)
        out['unknown_refused_code1'] = refused_1
        out['unknown_other'] = other
        print(json.dumps(out))
        """

    /// A handshake flood at router 1's gossip port while a ping runs between the workloads of
    /// routers 1 and 2: the established link is untouched and loses no ping, at most 64
    /// handshakes are ever unfinished, each attempt beyond 20 a second from one address is
    /// closed, idle ones are closed at the 10 s limit, every unknown PSK id gets REFUSE 1, the
    /// log grows by a bounded amount and the descriptors return to their level.
    func testHandshakeFloodLeavesEstablishedLinksAlone() throws {
        try requireRoot()
        let (net, a, attacker) = try pairAndAttacker(["--log-level", "info"], workloads: "10.32.11")
        defer { net.cleanup() }
        let sources = (100..<140).map { "198.18.0.\($0)" }
        for address in sources { try Shell.run(["ip", "-n", attacker, "addr", "add", "\(address)/24", "dev", "eth0"]) }
        let link = try XCTUnwrap(try net.connection(1, to: 2))
        let pid = try XCTUnwrap(net.router(1)?.processIdentifier)
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1 }
        let fdBefore = descriptors(), logBefore = net.log(1).utf8.count

        let ping = try PingRun(net: net, from: a, to: "10.32.11.2", interval: 0.02, seconds: 30, name: "ping-flood")
        let script = "\(net.directory)/flood.py"
        try Self.handshakeFloodScript.write(toFile: script, atomically: true, encoding: .utf8)
        let started = Date()
        let flood = try Shell.run(["ip", "netns", "exec", attacker, "python3", script, net.host(1).address,
                                   sources.joined(separator: ","), "1000", "500", "1000"], check: false)
        let floodSeconds = Date().timeIntervalSince(started)
        let fdSettled = net.waitUntil(timeout: 15) { descriptors() <= fdBefore }
        let fdAfter = descriptors()
        ping.process.waitUntilExit()
        let logGrowth = net.log(1).utf8.count - logBefore
        let linkAfter = try net.connection(1, to: 2)
        let (lost, answered, _, rate) = ping.losses()
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data((flood.output.split(separator: "\n").last ?? "").utf8)) as? [String: Any],
                                   flood.output)
        let int = { (key: String) in result[key] as? Int ?? -1 }
        let refusedAttempts = int("burst_closed") + int("burst_refused_code9") + int("idle_closed_at_once") + int("unknown_refused_code1")
        figure("handshake-flood", "\(flood.output.split(separator: "\n").last ?? "") in \(String(format: "%.1f", floodSeconds)) s from \(sources.count) addresses")
        figure("handshake-flood", String(format: "log: %d bytes for %d refused attempts (%.0f bytes per 1,000); descriptors %d before, %d after",
                                         logGrowth, refusedAttempts, Double(logGrowth) * 1000 / Double(max(1, refusedAttempts)), fdBefore, fdAfter))
        figure("handshake-flood", String(format: "ping at %.0f pps meanwhile: %d lost; link 1-2 kept: %@", rate, lost.count,
                                         linkAfter?.connectionId == link.connectionId ? "yes" : "no"))
        XCTAssertEqual(flood.status, 0, flood.output)
        XCTAssertGreaterThan(answered, 0)
        XCTAssertEqual(lost.count, 0, "\(lost.prefix(5))")
        XCTAssertEqual(linkAfter?.connectionId, link.connectionId, "the established link was replaced")
        XCTAssertLessThanOrEqual(int("burst_served"), 64, "the half-open cap")
        XCTAssertLessThanOrEqual(int("idle_served"), 64, "the half-open cap")
        XCTAssertEqual(int("idle_closed_by_timeout"), int("idle_served"), "idle handshakes closed at the 10 s limit")
        XCTAssertEqual(int("unknown_refused_code1"), 1000, "\(result["unknown_other"] ?? "")")
        XCTAssertTrue(fdSettled, "descriptors \(fdBefore) before, \(fdAfter) after")
        XCTAssertLessThan(logGrowth, 64 * 1024, "the log stays bounded")
    }
}
