// Key rotation end to end: rekeys and a mesh-wide password rotation under live traffic.
import Foundation
import XCTest
@testable import WeftRouter

final class KeyRotationTests: XCTestCase {
    private func writePassword(_ net: TestNet, _ text: String) throws -> String {
        let path = "\(net.directory)/new-password"
        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `weft rotate-password --json` to `password` through host `index`, with `grace`; the
    /// command must succeed and answer a result.
    private func rotatePassword(_ net: TestNet, to password: String, grace: String, via index: Int = 1) throws
        -> (result: RotatePasswordResult, output: String) {
        let file = try writePassword(net, password)
        let rotation = try Shell.run([binary("weft"), "rotate-password", "--file", file, "--grace", grace, "--json",
                                      "--socket", net.host(index).socket], check: false)
        XCTAssertEqual(rotation.status, 0, rotation.output)
        return (try JSONDecoder().decode(RotatePasswordResult.self, from: Data(rotation.output.utf8)), rotation.output)
    }

    private func established(_ net: TestNet, _ index: Int) -> [ConnectionStatus] {
        ((try? net.connections(index)) ?? []).filter { $0.state == .established }
    }

    /// 200 pings a second between two workloads while `weft rotate-key` runs five times and a
    /// full `weft rotate-password` cycle follows: not one ping is lost; epochs and password ids
    /// change everywhere. After the grace period a router that knows only the old password is
    /// refused with the reason; a restarted router keeps its keyring.
    func testRotationsLoseNoPacketsAndOldPasswordIsRefusedAfterGrace() throws {
        try requireRoot()
        let net = try TestNet(hosts: 4)
        defer { net.cleanup() }
        try net.launchStar(3)
        for index in 1...3 { XCTAssertTrue(net.sleeveReady(index, peers: 2), "host \(index)") }
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        _ = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        let oldId = try XCTUnwrap(established(net, 1).first?.pskId)

        let pingLog = "\(net.directory)/ping.log"
        let ping = try net.startBackground(namespace: w1, ["ping", "-i", "0.005", "-c", "2400", "-W", "1", "10.47.0.2"], output: pingLog)
        usleep(500_000)
        for round in 1...5 {
            let r = try net.cli(1, ["rotate-key"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("epoch \(round - 1) -> \(round)"), "round \(round): \(r.output)")
            usleep(200_000)
        }
        let (result, output) = try rotatePassword(net, to: "the new network password 2026", grace: "4s")
        XCTAssertEqual(result.acknowledged.count, 2, output)
        XCTAssertTrue(result.missing.isEmpty, output)
        XCTAssertNotEqual(result.id, oldId)
        XCTAssertTrue(net.waitUntil(timeout: 20) { !ping.isRunning })
        let pingOutput = (try? String(contentsOfFile: pingLog, encoding: .utf8)) ?? ""
        XCTAssertTrue(pingOutput.contains("2400 packets transmitted, 2400 received"), "packets were lost:\n\(pingOutput.suffix(400))")

        // Every connection of every router is on the new password, past epoch 0.
        XCTAssertTrue(net.waitUntil(timeout: 5) {
            (1...3).allSatisfy { index in
                let links = established(net, index)
                return links.count == 2 && links.allSatisfy { $0.pskId == result.id && ($0.keyEpoch ?? 0) > 0 && $0.lastRekeyAt != nil }
            }
        }, "\((1...3).map { established(net, $0).map { "\($0.pskId ?? "-")@\($0.keyEpoch ?? -1)" } })")

        // After the grace period, a router that knows only the old password is refused.
        sleep(5)
        let list = try net.cli(1, ["password", "list", "--json"])
        let entries = try JSONDecoder().decode([PasswordInfo].self, from: Data(list.output.utf8))
        XCTAssertEqual(entries.first { $0.id == oldId }?.state, .retired, list.output)
        XCTAssertEqual(entries.first { $0.id == result.id }?.state, .active)
        try net.launch(4, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 10) {
            try net.connections(4).contains { $0.state == .failed && ($0.reason ?? "").contains("unknown password id") }
        }, "\(String(describing: try? net.connections(4)))")
        XCTAssertTrue(net.waitUntil(timeout: 5) {
            try net.connections(1).contains { $0.direction == .inbound && ($0.reason ?? "").contains("unknown password id") }
        })
        for index in 1...3 { XCTAssertEqual(established(net, index).count, 2, "host \(index) lost a connection") }

        // A restart keeps the keyring: the router comes back on the new password although it
        // is launched with the old one; the file is 0600 and holds no password in clear.
        let keyringPath = "\(net.host(2).dataDir)/keyring.json"
        net.kill(2, signal: SIGTERM)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 15) { established(net, 2).count == 2 && established(net, 2).allSatisfy { $0.pskId == result.id } },
                      "\(established(net, 2))")
        let attributes = try FileManager.default.attributesOfItem(atPath: keyringPath)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let keyringText = try String(contentsOfFile: keyringPath, encoding: .utf8)
        XCTAssertFalse(keyringText.contains("correct horse battery"))
        XCTAssertFalse(keyringText.contains("the new network password"))
        XCTAssertTrue(keyringText.contains(result.id))
    }

    /// An iperf3 transfer across rekeys and a password rotation completes.
    func testTransferCompletesAcrossRotation() throws {
        try transferAcrossRotation(environment: [:])
    }

    /// The same with the TAP → UDP pipeline's second stage on its own thread (off by default).
    func testTransferCompletesAcrossRotationWithThePipelineThreaded() throws {
        try transferAcrossRotation(environment: ["WEFT_PIPELINE": "on"])
    }

    private func transferAcrossRotation(environment: [String: String]) throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--rekey-interval", "2s"], environment: environment)
        try net.launch(2, peers: [1], extraArgs: ["--rekey-interval", "2s"], environment: environment)
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        let w2 = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        let server = try net.startBackground(namespace: w2, ["iperf3", "-s", "-1", "-B", "10.47.0.2"], output: "\(net.directory)/iperf-server.log")
        usleep(500_000)
        let client = try net.startBackground(namespace: w1, ["iperf3", "-c", "10.47.0.2", "-t", "8"], output: "\(net.directory)/iperf.log")
        sleep(2)
        XCTAssertEqual(try net.cli(2, ["rotate-key"]).status, 0)
        let file = try writePassword(net, "another network password")
        XCTAssertEqual(try Shell.run([binary("weft"), "rotate-password", "--file", file, "--grace", "1m", "--socket", net.host(2).socket],
                                     check: false).status, 0)
        XCTAssertTrue(net.waitUntil(timeout: 20) { !client.isRunning })
        net.stopBackground(server)
        XCTAssertEqual(client.terminationStatus, 0, (try? String(contentsOfFile: "\(net.directory)/iperf.log", encoding: .utf8)) ?? "")
        let c = try XCTUnwrap(established(net, 1).first)
        XCTAssertGreaterThanOrEqual(c.keyEpoch ?? 0, 3, "scheduled rekeys every 2 s plus the manual ones")
        // Each router stamps counters in order and its send stage keeps that order
        // (SleeveEngine+Pipeline.swift): across the epoch switches no packet may fall out of the
        // replay window or fail its tag, in either direction (router 2 receives the data).
        for index in [1, 2] {
            let counters = try XCTUnwrap(established(net, index).first?.counters, "router \(index)")
            XCTAssertEqual(counters.dropReplay, 0, "router \(index)")
            XCTAssertEqual(counters.dropBadTag, 0, "router \(index)")
            XCTAssertGreaterThan(counters.rxPackets, 1000, "router \(index)")
        }
    }

    /// A rotation while a peer is down finishes for the others and names the missing one; the
    /// peer then joins with the old password during the grace period and is moved to the new
    /// one. Two rotations started at once run one after the other.
    func testPeerDownDuringRotationCatchesUpAndRotationsAreSerialized() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launchStar(3)
        for index in 1...3 { XCTAssertTrue(net.sleeveReady(index, peers: 2), "host \(index)") }
        net.kill(3, signal: SIGTERM)
        XCTAssertTrue(net.waitUntil(timeout: 5) { self.established(net, 1).count == 1 })
        let (result, output) = try rotatePassword(net, to: "password while one was away", grace: "5m")
        XCTAssertEqual(result.acknowledged.count, 1)
        XCTAssertEqual(result.missing.count, 1, "the stopped router is reported")
        XCTAssertTrue(result.missing.first?.contains(net.nickname(3)) == true, output)
        // Back with only the old password (a fresh data dir: no keyring): it joins and is moved.
        try? FileManager.default.removeItem(atPath: net.host(3).dataDir)
        try net.launch(3, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 15) {
            let links = self.established(net, 3)
            return links.count == 2 && links.allSatisfy { $0.pskId == result.id }
        }, "\(established(net, 3))")

        // Two rotations at once: both complete, one after the other; the later one is active.
        let a = try writePassword(net, "first of two concurrent rotations")
        let bPath = "\(net.directory)/second-password"
        try Data("second of two concurrent rotations\n".utf8).write(to: URL(fileURLWithPath: bPath))
        let first = try net.startBackground(namespace: net.host(1).namespace,
                                            [binary("weft"), "rotate-password", "--file", a, "--grace", "5m", "--json", "--socket", net.host(1).socket],
                                            output: "\(net.directory)/rot-a.json")
        let second = try net.startBackground(namespace: net.host(1).namespace,
                                             [binary("weft"), "rotate-password", "--file", bPath, "--grace", "5m", "--json", "--socket", net.host(1).socket],
                                             output: "\(net.directory)/rot-b.json")
        XCTAssertTrue(net.waitUntil(timeout: 30) { !first.isRunning && !second.isRunning })
        XCTAssertEqual(first.terminationStatus, 0)
        XCTAssertEqual(second.terminationStatus, 0)
        let list = try JSONDecoder().decode([PasswordInfo].self, from: Data(try net.cli(1, ["password", "list", "--json"]).output.utf8))
        XCTAssertEqual(list.filter { $0.state == .active }.count, 1)
        XCTAssertEqual(list.count, 4, "launch password, the rotation, and the two concurrent ones")
        XCTAssertTrue(net.waitUntil(timeout: 10) {
            let active = list.first { $0.state == .active }!.id
            return (1...3).allSatisfy { index in self.established(net, index).allSatisfy { $0.pskId == active } }
        })
    }

    /// `weft password use` of a password no connected peer holds: a warning naming the peer, the
    /// link stays on the old password and status shows both ids; once the peer has it, it moves.
    func testUsingAPasswordNoPeerKnowsWarnsAndStatusShowsBothIds() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1)
        try net.launch(2, peers: [1])
        XCTAssertTrue(net.waitUntil(timeout: 15) { self.established(net, 1).count == 1 })
        let old = try XCTUnwrap(established(net, 1).first?.pskId)
        let file = try writePassword(net, "only router one knows this")
        let added = try net.cli(1, ["password", "add", "--file", file])
        XCTAssertEqual(added.status, 0, added.output)
        let id = try XCTUnwrap(added.output.split(whereSeparator: { !$0.isHexDigit }).map(String.init).first { $0.count == 16 && $0 != old },
                               added.output)

        let use = try net.cli(1, ["password", "use", id])
        XCTAssertEqual(use.status, 0, use.output)
        XCTAssertTrue(use.output.contains("warning") && use.output.contains("no connection can move")
                      && use.output.contains(net.nickname(2)) && use.output.contains("weft password use \(old)"), use.output)
        let link = try XCTUnwrap(established(net, 1).first)
        XCTAssertEqual(link.pskId, old)
        XCTAssertEqual(link.activePskId, id)
        let text = try net.cli(1, ["status", "connections"])
        XCTAssertTrue(text.output.contains("\(old) (active: \(id))"), text.output)

        XCTAssertEqual(try net.cli(2, ["password", "add", "--file", file]).status, 0)
        let again = try net.cli(1, ["password", "use", id])
        XCTAssertTrue(again.output.contains("1 connection moved to it") && !again.output.contains("warning"), again.output)
        let moved = try XCTUnwrap(established(net, 1).first)
        XCTAssertEqual(moved.pskId, id)
        XCTAssertNil(moved.activePskId)
    }

    /// In a line A–B–C (A and C cannot reach each other's underlay), a rotation started on A
    /// reaches C through B: C acknowledges, switches, and keeps its link after the grace period.
    func testRotationReachesPeersWithoutADirectConnection() throws {
        try requireRoot()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        try net.launchLine()
        XCTAssertTrue(net.sleeveReady(2, peers: 2))
        XCTAssertTrue(net.waitUntil(timeout: 10) {
            try JSONDecoder().decode(RouterStatus.self, from: Data(try net.cli(1, ["status", "--json"]).output.utf8)).peers == 3
        })
        let (result, output) = try rotatePassword(net, to: "a password for the whole line", grace: "3s")
        XCTAssertEqual(result.acknowledged.count, 2, output)
        XCTAssertTrue(result.missing.isEmpty, output)
        sleep(5)
        XCTAssertEqual(established(net, 3).count, 1, "C lost its link after the grace period")
        XCTAssertEqual(established(net, 3).first?.pskId, result.id)
        XCTAssertEqual(established(net, 2).count, 2)
    }
}
