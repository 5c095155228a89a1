// /metrics of a live router, parsed by the reference Prometheus text parser
// (prometheus_client.parser, from PyPI: scripts/install-deps.sh installs it); the listener's
// other documents (the mesh page, /topology.json) and its answers to bad requests.
import Foundation
import WeftControl
import XCTest
@testable import WeftRouter

/// One sample as the reference parser read it.
struct ScrapedSample: Decodable {
    let family: String
    let type: String
    let name: String
    let labels: [String: String]
    let value: Double
}

extension TestNet {
    /// Scrapes `url` from inside host `index`'s namespace and parses it with
    /// prometheus_client.parser.text_string_to_metric_families. Throws when the parser rejects it.
    func scrape(_ index: Int, _ url: String) throws -> [ScrapedSample] {
        let script = """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            body = urllib.request.urlopen(sys.argv[1], timeout=5)
            assert body.headers.get('Content-Type', '').startswith('text/plain; version=0.0.4'), body.headers.get('Content-Type')
            out = []
            for family in text_string_to_metric_families(body.read().decode('utf-8')):
                for s in family.samples:
                    out.append(dict(family=family.name, type=family.type, name=s.name, labels=s.labels, value=s.value))
            print(json.dumps(out))
            """
        let result = try Shell.run(["ip", "netns", "exec", host(index).namespace, "python3", "-c", script, url], check: false)
        guard result.status == 0, let line = result.output.split(separator: "\n").last else {
            throw ShellError(description: "scrape of \(url) failed: \(result.output)")
        }
        return try JSONDecoder().decode([ScrapedSample].self, from: Data(line.utf8))
    }

    /// The body of `url` fetched from inside host `index`'s namespace; throws on an HTTP error.
    func fetch(_ index: Int, _ url: String) throws -> String {
        let script = "import sys, urllib.request\nsys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode('utf-8'))"
        let result = try Shell.run(["ip", "netns", "exec", host(index).namespace, "python3", "-c", script, url], check: false)
        guard result.status == 0 else { throw ShellError(description: "fetch of \(url) failed: \(result.output)") }
        return result.output
    }
}

extension Array where Element == ScrapedSample {
    func values(_ name: String, _ labels: [String: String] = [:]) -> [Double] {
        filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }.map(\.value)
    }
}

final class MetricsTests: XCTestCase {
    private func requireParser() throws {
        let probe = try Shell.run(["python3", "-c", "import prometheus_client.parser"], check: false)
        try XCTSkipIf(probe.status != 0, "python3 prometheus_client is not installed (scripts/install-deps.sh installs it): \(probe.output)")
    }

    /// Two encrypted routers with traffic between their workloads, and a third with the wrong
    /// password knocking on the first: every family is there, typed, and counts what happened.
    func testMetricsAreValidPrometheusTextAndCountTraffic() throws {
        try requireRoot()
        try requireParser()
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        // Each namespace has its own loopback; host 2 serves on its underlay address instead.
        try net.launch(1, extraArgs: ["--metrics-addr", "127.0.0.1:6782"])
        try net.launch(2, peers: [1], extraArgs: ["--metrics-addr", "198.18.0.2:9100"])
        XCTAssertTrue(net.sleeveReady(1, peers: 1), "\(String(describing: try? net.connections(1)))")
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        _ = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        XCTAssertEqual(try net.ping(from: w1, "10.47.0.2", count: 5).status, 0)
        try net.launch(3, peers: [1], password: "a different long password")
        let peer2 = try XCTUnwrap(try net.connections(1).first { $0.state == .established }?.peer)

        var samples: [ScrapedSample] = []
        XCTAssertTrue(net.waitUntil(timeout: 15) {
            samples = try net.scrape(1, "http://127.0.0.1:6782/metrics")
            return samples.values("weft_handshake_failures_total").reduce(0, +) > 0
        }, "no handshake failure counted for the wrong password: \(samples.filter { $0.family.hasPrefix("weft_handshake") })")

        let types = Dictionary(samples.map { ($0.family, $0.type) }, uniquingKeysWith: { a, _ in a })
        for (family, type) in [("weft_connections", "gauge"), ("weft_connection_bytes", "counter"), ("weft_connection_frames", "counter"),
                               ("weft_sleeve_drops", "counter"), ("weft_handshake_failures", "counter"), ("weft_rekeys", "counter"),
                               ("weft_gossip_unknown_messages", "counter"), ("weft_gossip_bytes", "counter"),
                               ("weft_overlay_mtu_bytes", "gauge"), ("weft_fastdp_flows", "gauge"), ("weft_peers", "gauge")] {
            XCTAssertEqual(types[family], type, "family \(family)")
        }
        XCTAssertEqual(samples.values("weft_connections", ["state": "established", "mode": "sleeve", "encrypted": "true"]), [1])
        XCTAssertGreaterThan(samples.values("weft_connection_bytes_total", ["peer": peer2, "direction": "tx"]).first ?? 0, 500)
        XCTAssertGreaterThan(samples.values("weft_connection_bytes_total", ["peer": peer2, "direction": "rx"]).first ?? 0, 500)
        XCTAssertGreaterThanOrEqual(samples.values("weft_connection_frames_total", ["peer": peer2, "direction": "rx"]).first ?? 0, 5)
        XCTAssertEqual(Set(samples.filter { $0.name == "weft_sleeve_drops_total" }.compactMap { $0.labels["reason"] }),
                       ["bad_tag", "replay", "malformed", "too_big"])
        XCTAssertEqual(samples.values("weft_sleeve_drops_total", ["reason": "bad_tag"]), [0])
        XCTAssertEqual(samples.values("weft_rekeys_total"), [0])
        XCTAssertEqual(samples.values("weft_gossip_unknown_messages_total"), [0])
        // Two links at least (host 2's, host 3's refused one): a handshake each way and more.
        XCTAssertGreaterThan(samples.values("weft_gossip_bytes_total", ["direction": "tx"]).first ?? 0, 200)
        XCTAssertGreaterThan(samples.values("weft_gossip_bytes_total", ["direction": "rx"]).first ?? 0, 200)
        XCTAssertEqual(try net.connections(1).filter { $0.state == .established }.map(\.unknownMessages), [0])
        XCTAssertEqual(samples.values("weft_overlay_mtu_bytes"), [1420])
        XCTAssertEqual(samples.values("weft_fastdp_flows"), [0])
        XCTAssertEqual(samples.values("weft_connection_path_mtu_bytes", ["peer": peer2]), [1420])
        XCTAssertEqual(samples.values("weft_peer_path_mtu_bytes", ["peer": peer2]), [1420])
        let failures = samples.filter { $0.name == "weft_handshake_failures_total" }.compactMap { $0.labels["reason"] }
        XCTAssertFalse(Set(failures).isDisjoint(with: ["handshake_failed", "unknown_psk_id", "password_mismatch"]), "\(failures)")

        // Host 2 serves on its underlay address: scraped from host 1 across the underlay.
        let remote = try net.scrape(1, "http://198.18.0.2:9100/metrics")
        XCTAssertEqual(remote.values("weft_connections", ["state": "established", "mode": "sleeve", "encrypted": "true"]), [1])
    }

    /// Off means no listener; a bad address refuses to start; other paths are 404, other methods
    /// 405, oversized requests refused; the mesh page and its data are served beside /metrics.
    func testMetricsOffBadAddressAndUnknownPath() throws {
        try requireRoot()
        try requireParser()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1)  // TestNet passes --metrics-addr off
        try net.launch(2, extraArgs: ["--metrics-addr", "127.0.0.1:6782"])
        XCTAssertTrue(net.waitUntil(timeout: 15) { try net.connections(1).isEmpty && net.connections(2).isEmpty })
        XCTAssertThrowsError(try net.scrape(1, "http://127.0.0.1:6782/metrics"), "nothing listens with --metrics-addr off")
        let notFound = try Shell.run(["ip", "netns", "exec", net.host(2).namespace, "python3", "-c",
                                      "import urllib.request, urllib.error\ntry:\n urllib.request.urlopen('http://127.0.0.1:6782/other')\nexcept urllib.error.HTTPError as e:\n print(e.code)"])
        XCTAssertEqual(notFound.output.trimmingCharacters(in: .whitespacesAndNewlines), "404")
        try checkListenerRefusesBadRequests(net, 2)
        // A router with metrics on, and no traffic at all: still a complete, parseable document.
        let idle = try net.scrape(2, "http://127.0.0.1:6782/metrics")
        XCTAssertEqual(idle.values("weft_connections").reduce(0, +), 0)
        XCTAssertEqual(idle.values("weft_sleeve_drops_total").count, 4)

        let bad = try Shell.run(["ip", "netns", "exec", net.host(1).namespace, binary("weft"), "launch", "--metrics-addr", "nowhere",
                                 "--socket", "\(net.directory)/bad.sock", "--data-dir", "\(net.directory)/bad"], check: false)
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.output.contains("--metrics-addr nowhere is not HOST:PORT"), bad.output)
    }

    /// Raw HTTP on host `index`'s listener at 127.0.0.1:6782: the status line of each answer.
    private func checkListenerRefusesBadRequests(_ net: TestNet, _ index: Int) throws {
        let script = """
            import socket, sys
            def ask(raw):
                s = socket.create_connection(('127.0.0.1', 6782), timeout=5)
                try:
                    s.sendall(raw)
                except OSError:
                    pass
                answer = b''
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        answer += chunk
                except OSError:
                    pass
                s.close()
                head, _, body = answer.partition(b'\\r\\n\\r\\n')
                lines = head.decode('latin-1').split('\\r\\n')
                kind = [l.split(':', 1)[1].strip() for l in lines if l.lower().startswith('content-type:')]
                print(lines[0].split(' ')[1] if lines[0] else 'none', kind[0] if kind else '-', len(body))
            ask(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
            ask(b'GET /topology.json HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
            ask(b'HEAD / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
            ask(b'POST /metrics HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\n\\r\\n{}')
            ask(b'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 200000\\r\\n\\r\\n' + b'x' * 200000)
            ask(b'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nX-Big: ' + b'y' * 100000 + b'\\r\\n\\r\\n')
            ask(b'not http at all\\r\\n\\r\\n')
            ask(b'GET /../etc/passwd HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')
            """
        let result = try Shell.run(["ip", "netns", "exec", net.host(index).namespace, "python3", "-c", script])
        let lines = result.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(lines.count, 8, result.output)
        guard lines.count == 8 else { return }
        XCTAssertEqual(lines[0].prefix(2), ["200", "text/html;"], "GET / is the mesh page: \(result.output)")
        XCTAssertEqual(Int(lines[0].last ?? ""), MeshPage.html.utf8.count)
        XCTAssertEqual(lines[1].prefix(2), ["200", "application/json"], result.output)
        XCTAssertEqual(lines[2].first, "200", "HEAD: \(result.output)")
        XCTAssertEqual(lines[2].last, "0", "HEAD has no body: \(result.output)")
        XCTAssertEqual(lines[3].first, "405", "POST: \(result.output)")
        XCTAssertEqual(lines[4].first, "413", "oversized body: \(result.output)")
        XCTAssertEqual(lines[5].first, "400", "oversized header: \(result.output)")
        XCTAssertEqual(lines[6].first, "400", "garbage: \(result.output)")
        XCTAssertEqual(lines[7].first, "404", "path outside the served ones: \(result.output)")
        // The page's data decodes as what the page reads, and the router still serves.
        let data = try JSONDecoder().decode(MeshPageData.self, from: Data(try net.fetch(index, "http://127.0.0.1:6782\(MeshPage.dataPath)").utf8))
        XCTAssertEqual(data.topology.peers.count, 1)
        XCTAssertEqual(data.throughput, [])
    }
}
