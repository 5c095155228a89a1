// Address management end to end (docs/protocol.md §7): `weft attach` without an address on real
// routers, concurrently, across a partition and a restart, and `weft rmpeer`. The range is
// 10.47.0.0/16, inside the test's namespaces only.
import Foundation
import XCTest
@testable import WeftRouter

extension TestNet {
    static let ipamRange = "10.47.0.0/16"

    /// The address `weft attach` printed ("… ethwe 10.47.3.1/16, host end …").
    static func attachedAddress(_ output: String) -> String? {
        output.split(separator: " ").first { $0.split(separator: ".").count == 4 && $0.contains("/") }.map { String($0.split(separator: "/")[0]) }
    }

    /// Attaches new workloads on `index` without addresses, all at once; returns namespace → address.
    func attachAllocating(_ index: Int, count: Int) throws -> [String: String] {
        var namespaces: [String] = []
        for _ in 0..<count {
            let ns = try addWorkload()
            try Shell.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            namespaces.append(ns)
        }
        let runs: [(String, Process, Pipe)] = try namespaces.map { ns in
            let process = Process(), pipe = Pipe()
            process.executableURL = URL(fileURLWithPath: binary("weft"))
            process.arguments = ["attach", ns, "--socket", host(index).socket]
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            return (ns, process, pipe)
        }
        var addresses: [String: String] = [:]
        for (ns, process, pipe) in runs {
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0, let address = Self.attachedAddress(output) else {
                throw ShellError(description: "attach \(ns) on host \(index) failed: \(output)")
            }
            addresses[ns] = address
        }
        return addresses
    }

    func ipam(_ index: Int) throws -> IPAMStatus {
        let result = try cli(index, ["ipam", "--json"])
        return try JSONDecoder().decode(IPAMStatus.self, from: Data(result.output.utf8))
    }

    /// Every workload pings every address in `addresses` from `from` (one packet each).
    func unreachable(from ns: String, _ addresses: [String]) throws -> [String] {
        try addresses.filter { try ping(from: ns, $0, count: 1).status != 0 }
    }
}

final class AddressManagementIntegrationTests: XCTestCase {
    private func mesh(_ count: Int) throws -> TestNet {
        let net = try TestNet(hosts: count)
        do {
            try net.launchStar(count, extraArgs: ["--ipalloc-range", TestNet.ipamRange, "--ipalloc-init", "consensus=\(count)"])
            for i in 1...count { XCTAssertTrue(net.sleeveReady(i, peers: count - 1), "host \(i) sleeve") }
        } catch {
            net.cleanup()
            throw error
        }
        return net
    }

    private func assertDistinct(_ all: [[String: String]], file: StaticString = #filePath, line: UInt = #line) {
        var holders: [String: String] = [:]
        for map in all {
            for (ns, address) in map {
                if let other = holders.updateValue(ns, forKey: address) { XCTFail("\(address) given to \(other) and \(ns)", file: file, line: line) }
            }
        }
    }

    /// 3 routers, 60 workloads attached at once (20 per router): distinct addresses that all
    /// ping; the same namespace attached again keeps its address, also after a kill -9 and
    /// restart; an address held elsewhere is refused with its holder named; `weft ipam` adds up.
    func testConcurrentAttachesGetDistinctAddressesThatSurviveARestart() throws {
        try requireRoot()
        let net = try mesh(3)
        defer { net.cleanup() }
        var started = Date()
        let perRouter = try [1, 2, 3].map { try net.attachAllocating($0, count: 20) }
        print(String(format: "ipam: 60 concurrent attaches on 3 routers in %.1f s", Date().timeIntervalSince(started)))
        assertDistinct(perRouter)
        let all = perRouter.flatMap(\.values)
        XCTAssertEqual(Set(all).count, 60)
        let first = try XCTUnwrap(perRouter[0].keys.sorted().first)
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.unreachable(from: first, all).isEmpty },
                      "unreachable from \(first): \(String(describing: try? net.unreachable(from: first, all)))")

        let status = try net.ipam(1)
        XCTAssertTrue(status.seeded)
        XCTAssertEqual(status.range, TestNet.ipamRange)
        XCTAssertEqual(status.shares.count, 3, "\(status.shares)")
        XCTAssertEqual(status.shares.map(\.used).reduce(0, +), 60)
        XCTAssertEqual(status.shares.map(\.blocks).reduce(0, +), 4096)
        let table = try net.cli(1, ["ipam"]).output
        XCTAssertTrue(table.contains("Range \(TestNet.ipamRange): divided") && table.contains("USED"), table)

        // The same namespace again: the same address.
        let (ns2, address2) = try XCTUnwrap(perRouter[1].sorted { $0.key < $1.key }.first)
        let again = try net.cli(2, ["attach", ns2])
        XCTAssertEqual(TestNet.attachedAddress(again.output), address2, again.output)

        // An address held by a workload of router 3, given by hand on router 1: refused.
        let (ns3, address3) = try XCTUnwrap(perRouter[2].sorted { $0.key < $1.key }.first)
        let intruder = try net.addWorkload()
        let refused = try net.cli(1, ["attach", intruder, "\(address3)/16"])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("netns:\(ns3)") && refused.output.contains(net.nickname(3)), refused.output)

        // Outside the range nothing is managed, but the same address by hand on two routers warns.
        let outsideA = try net.addWorkload(), outsideB = try net.addWorkload()
        XCTAssertEqual(try net.cli(1, ["attach", outsideA, "10.48.0.7/24"]).status, 0)
        XCTAssertTrue(net.waitUntil(timeout: 10) {
            let warned = try net.cli(2, ["attach", outsideB, "10.48.0.7/24"])
            return warned.status == 0 && warned.output.contains("warning: 10.48.0.7 (outside --ipalloc-range) is also given to netns:\(outsideA)")
        })

        // kill -9 and restart of router 2 with its data dir: its workloads keep their addresses.
        net.kill(2)
        try net.launch(2, peers: [1], extraArgs: ["--ipalloc-range", TestNet.ipamRange, "--ipalloc-init", "consensus=3"])
        XCTAssertTrue(net.sleeveReady(2, peers: 2))
        let restarted = try net.cli(2, ["attach", ns2])
        XCTAssertEqual(TestNet.attachedAddress(restarted.output), address2, restarted.output)
        let more = try net.attachAllocating(2, count: 5)
        assertDistinct(perRouter + [more])

        // Allocation latency: attaches one after another on router 1 (the whole CLI call);
        // WEFT_IPAM_ATTACHES=100 for the closing figures.
        let attaches = ProcessInfo.processInfo.environment["WEFT_IPAM_ATTACHES"].flatMap(Int.init) ?? 20
        var times: [Double] = []
        for _ in 0..<attaches {
            let ns = try net.addWorkload()
            started = Date()
            let result = try net.cli(1, ["attach", ns])
            times.append(Date().timeIntervalSince(started))
            XCTAssertEqual(result.status, 0, result.output)
        }
        times.sort()
        print(String(format: "ipam: weft attach without an address, median of %d on router 1: %.0f ms (the whole CLI call)", attaches, times[attaches / 2] * 1000))
    }

    /// A partition (TCP 6783 between router 1 and the others blocked) while each side attaches
    /// 10 more, then the heal: no address twice, everything pings. Then router 3 stops for good
    /// and `weft rmpeer` on router 1 takes its space (refused while it ran).
    func testPartitionHealAndRmpeer() throws {
        try requireRoot()
        let net = try mesh(3)
        defer { net.cleanup() }
        let before = try [1, 2, 3].map { try net.attachAllocating($0, count: 3) }
        let ns1 = net.host(1).namespace
        try Shell.run(["ip", "netns", "exec", ns1, "nft", "add table inet wefttest"])
        try Shell.run(["ip", "netns", "exec", ns1, "nft", "add chain inet wefttest input { type filter hook input priority 0 ; }"])
        try Shell.run(["ip", "netns", "exec", ns1, "nft", "add rule inet wefttest input tcp dport 6783 drop"])
        try Shell.run(["ip", "netns", "exec", ns1, "nft", "add rule inet wefttest input tcp sport 6783 drop"])
        try net.resetConnections(1, to: 2)
        try net.resetConnections(1, to: 3)
        XCTAssertTrue(net.waitUntil(timeout: 40) { try net.connection(1, to: 2) == nil && net.connection(1, to: 3) == nil })
        let during = try [1, 2, 3].map { try net.attachAllocating($0, count: 10) }
        assertDistinct(before + during)
        try Shell.run(["ip", "netns", "exec", ns1, "nft", "delete table inet wefttest"])
        XCTAssertTrue(net.waitUntil(timeout: 40) { try net.connection(1, to: 2) != nil && net.connection(1, to: 3) != nil })
        let all = (before + during).flatMap(\.values)
        let from = try XCTUnwrap(during[1].keys.sorted().first)
        XCTAssertTrue(net.waitUntil(timeout: 20) { try net.unreachable(from: from, all).isEmpty },
                      "unreachable: \(String(describing: try? net.unreachable(from: from, all)))")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ipam(2).shares.map(\.used).reduce(0, +) == 39 },
                      "\(String(describing: try? net.ipam(2)))")

        // rmpeer: refused while router 3 runs; after it stopped, router 1 takes its blocks.
        let share3 = try XCTUnwrap(try net.ipam(1).shares.first { $0.nickname == net.nickname(3) })
        let blocks3 = share3.blocks
        let early = try net.cli(1, ["rmpeer", net.nickname(3)])
        XCTAssertNotEqual(early.status, 0)
        XCTAssertTrue(early.output.contains("stop it first"), early.output)
        let blocks1 = try XCTUnwrap(try net.ipam(1).shares.first { $0.isSelf }?.blocks)
        net.kill(3, signal: SIGTERM)
        XCTAssertTrue(net.waitUntil(timeout: 40) { try net.peers(1).count == 2 })
        // Gone from the topology, it is named by its peer name (weft ipam still lists it).
        XCTAssertEqual(try net.ipam(1).shares.first { $0.name == share3.name }?.reachable, false)
        let removed = try net.cli(1, ["rmpeer", share3.name])
        XCTAssertEqual(removed.status, 0, removed.output)
        XCTAssertTrue(removed.output.contains("took \(blocks3) blocks"), removed.output)
        XCTAssertTrue(net.waitUntil(timeout: 10) {
            try net.ipam(2).shares.first { $0.nickname == net.nickname(1) }?.blocks == blocks1 + blocks3
        }, "\(String(describing: try? net.ipam(2)))")
    }

    /// Two routers launched with different ranges: their link works, they do not pool, and
    /// `weft ipam` on each names the other and why.
    func testRoutersWithDifferentRangesRefuseToPoolAndSaySo() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--ipalloc-range", "10.47.0.0/16"])
        // Router 2 names router 1, which is of another pool: by the default consensus (itself and
        // router 1) its range would wait for router 1 for ever, so it divides it alone.
        try net.launch(2, peers: [1], extraArgs: ["--ipalloc-range", "10.46.0.0/16", "--ipalloc-init", "consensus=1"])
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        let w1 = try net.attachAllocating(1, count: 1), w2 = try net.attachAllocating(2, count: 1)
        XCTAssertTrue(w2.values.first!.hasPrefix("10.46."), "\(w2)")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ipam(1).refusedPools.values.contains { $0.contains("10.46.0.0/16") } },
                      "\(String(describing: try? net.ipam(1)))")
        let table = try net.cli(2, ["ipam"]).output
        XCTAssertTrue(table.contains("Not pooled with") && table.contains("10.47.0.0/16"), table)
        XCTAssertTrue(net.log(1).contains("not pooling addresses with this peer"), "a warning in the log")
        let status = try net.cli(1, ["status"]).output
        XCTAssertTrue(status.contains("not pooled with"), status)
        XCTAssertEqual(try net.status(1).ipalloc?.refusedPools.count, 1)
        XCTAssertNotNil(try net.connection(1, to: 2), "the link stays")
        _ = w1
    }

    /// An IPv6 range: allocated addresses ping between two routers; detach gives the address
    /// back (the next attach reuses it); expose without an address gives the host one; the
    /// metrics count what this router gave out.
    func testIPv6RangeDetachExposeAndMetrics() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        let args = ["--ipalloc-range", "fd47::/112"]
        try net.launch(1, extraArgs: args + ["--metrics-addr", "127.0.0.1:6782"])
        try net.launch(2, peers: [1], extraArgs: args)
        XCTAssertTrue(net.sleeveReady(1, peers: 1))
        var addresses: [String] = []
        var namespaces: [String] = []
        for index in [1, 2] {
            let ns = try net.addWorkload()
            let result = try net.cli(index, ["attach", ns])
            XCTAssertEqual(result.status, 0, result.output)
            let address = try XCTUnwrap(result.output.split(separator: " ").first { $0.hasPrefix("fd47::") }.map { String($0.split(separator: "/")[0]) }, result.output)
            XCTAssertTrue(result.output.contains("\(address)/112"), result.output)
            addresses.append(address)
            namespaces.append(ns)
        }
        XCTAssertNotEqual(addresses[0], addresses[1])
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.ping(from: namespaces[0], addresses[1], count: 1).status == 0 },
                      "ping6 \(addresses[1]) from router 1's workload")

        let exposed = try net.cli(1, ["expose"])
        XCTAssertEqual(exposed.status, 0, exposed.output)
        XCTAssertTrue(exposed.output.contains("fd47::") && exposed.output.contains("/112"), exposed.output)
        let metrics = try net.scrape(1, "http://127.0.0.1:6782/metrics")
        XCTAssertEqual(metrics.values("weft_ipam_addresses_used"), [2], "the workload and the host")
        XCTAssertEqual(metrics.values("weft_ipam_addresses_free").first.map { $0 > 0 }, true)

        // Detach gives the address back: a new workload gets the same (lowest free) one.
        XCTAssertEqual(try net.cli(1, ["detach", namespaces[0]]).status, 0)
        XCTAssertEqual(try net.scrape(1, "http://127.0.0.1:6782/metrics").values("weft_ipam_addresses_used"), [1])
        let next = try net.addWorkload()
        let again = try net.cli(1, ["attach", next])
        XCTAssertTrue(again.output.contains("\(addresses[0])/112"), again.output)
    }
}
