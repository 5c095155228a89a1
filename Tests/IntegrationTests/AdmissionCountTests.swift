// What a router counts of unwanted traffic at its port: connections over the rate limit are
// refused with REFUSE 9 and counted in weft_handshake_failures_total, and empty UDP datagrams at
// the sleeve port are counted as malformed drops.
import Foundation
import XCTest

final class AdmissionCountTests: XCTestCase {
    /// The metrics text of host `index` (served on its namespace's 127.0.0.1:6782).
    private func metrics(_ net: TestNet, _ index: Int) throws -> String {
        try Shell.run(["ip", "netns", "exec", net.host(index).namespace, "python3", "-c",
                       "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:6782/metrics', timeout=5).read().decode())"]).output
    }

    private func sample(_ text: String, _ series: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }

    func testRateLimitedConnectionsGetRefuse9AndAreCounted() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--metrics-addr", "127.0.0.1:6782"])
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
        // 60 connections at once from one address: the bucket holds 20 (protocol.md §3.9).
        let script = """
            import socket, sys, time
            conns = [socket.create_connection((sys.argv[1], 6783), timeout=5) for _ in range(60)]
            refused = 0
            deadline = time.time() + 5
            for c in conns:
                got = b''
                c.settimeout(max(0.1, deadline - time.time()))
                try:
                    while b'\\x04\\x09rate limited' not in got:
                        chunk = c.recv(4096)
                        if not chunk: break
                        got += chunk
                except OSError:
                    pass
                refused += b'\\x04\\x09rate limited' in got
            print(refused)
            """
        let result = try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "python3", "-c", script, net.host(1).address])
        let refused = Int(result.output.split(separator: "\n").last ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(refused, 30, "connections over the limit hear REFUSE 9: \(result.output)")
        XCTAssertTrue(net.waitUntil(timeout: 5) {
            self.sample(try self.metrics(net, 1), #"weft_handshake_failures_total{reason="rate_limited"}"#) >= Double(refused)
        }, (try? metrics(net, 1)) ?? "")
    }

    func testEmptyDatagramsAreCountedAsMalformed() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--metrics-addr", "127.0.0.1:6782"])
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
        let series = #"weft_sleeve_drops_total{reason="malformed"}"#
        let before = sample(try metrics(net, 1), series)
        let script = "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(5): s.sendto(b'', (sys.argv[1], 6783))"
        _ = try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "python3", "-c", script, net.host(1).address])
        XCTAssertTrue(net.waitUntil(timeout: 5) { self.sample(try self.metrics(net, 1), series) >= before + 5 }, (try? metrics(net, 1)) ?? "")
    }
}
