// The mesh page (`GET /` on the metrics listener) in a real headless browser: Debian's chromium,
// run inside router 1's namespace against a three-router line 1–2–3, must draw the three peers and
// every link's mode from /topology.json, the link between routers 2 and 3 included. The screenshot and the DOM are kept as test artifacts in
// .build/test-artifacts/ (docs/operations.md, "The mesh page").
import Foundation
import WeftControl
import XCTest

final class MeshPageBrowserTests: XCTestCase {
    static let chromium = "/usr/bin/chromium"
    static let address = "127.0.0.1:6782"

    /// `.build/test-artifacts` of the package this test was built from.
    static var artifactDirectory: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent(".build/test-artifacts").path
    }

    func testPageDrawsThePeersOfAThreeRouterMesh() throws {
        try requireRoot()
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.chromium),
                          "chromium is not installed (scripts/install-deps.sh installs it: apt-get install chromium)")
        let net = try TestNet(hosts: 3)
        defer { net.cleanup() }
        // Each router in its own namespace: the same listener address on all three is fine.
        try net.launchLine(extraArgs: ["--metrics-addr", Self.address])
        var data: MeshPageData?
        let meshed = net.waitUntil(timeout: 30) {
            data = try JSONDecoder().decode(MeshPageData.self, from: Data(try net.fetch(1, "http://\(Self.address)\(MeshPage.dataPath)").utf8))
            return data?.topology.peers.count == 3 && data?.topology.links.count == 2
                && data?.topology.links.allSatisfy { $0.state == .established && $0.mode == "sleeve" } == true
        }
        XCTAssertTrue(meshed, "\(String(describing: data))\n\(net.log(1))")
        // Traffic between host 1's and host 2's workloads, so that the page has a rate to show.
        let w1 = try net.attachWorkload(1, "10.47.0.1/24")
        _ = try net.attachWorkload(2, "10.47.0.2/24")
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.ping(from: w1, "10.47.0.2", count: 1).status == 0 })
        _ = try net.startBackground(namespace: w1, ["ping", "-q", "-i", "0.02", "-s", "1200", "10.47.0.2"], output: "\(net.directory)/ping.log")
        XCTAssertTrue(net.waitUntil(timeout: 10) {
            let data = try JSONDecoder().decode(MeshPageData.self, from: Data(try net.fetch(1, "http://\(Self.address)\(MeshPage.dataPath)").utf8))
            return data.throughput.contains { $0.rxBitsPerSecond > 100_000 }
        }, "the router measured no throughput for the ping")

        let nicknames = (1...3).map { net.nickname($0) }
        let names = try (1...3).map { try net.status($0).name }
        // --dump-dom prints the DOM once the virtual time budget (several refreshes) is spent.
        let dom = try runChromium(net, ["--dump-dom"])
        try FileManager.default.createDirectory(atPath: Self.artifactDirectory, withIntermediateDirectories: true)
        let domPath = "\(Self.artifactDirectory)/mesh-page.html"
        try dom.write(toFile: domPath, atomically: true, encoding: .utf8)
        print("mesh page DOM kept at \(domPath)")
        XCTAssertTrue(dom.contains("data-peers=\"3\"") && dom.contains("data-links=\"2\""), "the page did not draw 3 peers and 2 links:\n\(dom)")
        XCTAssertEqual(dom.components(separatedBy: "<g class=\"peer").count - 1, 3, dom)
        for (name, nickname) in zip(names, nicknames) {
            XCTAssertTrue(dom.contains("data-name=\"\(name)\" data-nickname=\"\(nickname)\""), "peer \(nickname) (\(name)) not drawn:\n\(dom)")
        }
        XCTAssertEqual(dom.components(separatedBy: "<line class=\"link sleeve\"").count - 1, 2, "the two sleeve links:\n\(dom)")
        // The link router 1 is not on, drawn with the mode its ends gossip; no throughput on it.
        let far = [names[1], names[2]].sorted()
        XCTAssertTrue(dom.contains("<line class=\"link sleeve\" data-mode=\"sleeve\" data-a=\"\(far[0])\" data-b=\"\(far[1])\""),
                      "the link between routers 2 and 3 is not drawn as sleeve:\n\(dom)")
        XCTAssertFalse(dom.contains("link unknown"), dom)
        XCTAssertEqual(dom.components(separatedBy: "<td>encrypted").count - 1, 2, "both links encrypted in the table:\n\(dom)")
        XCTAssertTrue(dom.contains("encrypted (chacha20-poly1305)") || dom.contains("encrypted (aes-256-gcm)"), dom)
        // The ping's link: about 50 frames of 1.2 kB a second each way, so hundreds of kbit/s.
        XCTAssertNotNil(dom.range(of: #"<td class="num">[0-9.]+ (kbit|Mbit)/s</td>"#, options: .regularExpression),
                        "no throughput shown for the link carrying the ping:\n\(dom)")
        XCTAssertTrue(dom.contains("<span id=\"state\" class=\"\">3 routers, 2 links; updated"), "no successful refresh: \(dom)")

        let screenshot = "\(Self.artifactDirectory)/mesh-page.png"
        try? FileManager.default.removeItem(atPath: screenshot)
        _ = try runChromium(net, ["--screenshot=\(screenshot)", "--window-size=1200,900", "--hide-scrollbars"])
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "not a PNG: \(screenshot)")
        print("mesh page screenshot kept at \(screenshot) (\(png.count) bytes)")
    }

    /// Runs headless chromium in host 1's namespace on the page, with a profile of its own that
    /// is removed afterwards; returns what it printed on stdout. Chromium is killed (its pid
    /// only) when it takes longer than 120 s.
    private func runChromium(_ net: TestNet, _ extra: [String]) throws -> String {
        let profile = "\(net.directory)/chromium-profile-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let stdoutPath = "\(profile).out", stderrPath = "\(profile).err"
        defer { try? FileManager.default.removeItem(atPath: stdoutPath); try? FileManager.default.removeItem(atPath: stderrPath) }
        for path in [stdoutPath, stderrPath] { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // Root needs --no-sandbox. The virtual time budget runs the page's 2 s refreshes a few
        // times (at once, in real time: the router, not the page, measures the rates).
        process.arguments = ["ip", "netns", "exec", net.host(1).namespace, Self.chromium, "--headless", "--no-sandbox",
                             "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile)", "--virtual-time-budget=7000"]
            + extra + ["http://\(Self.address)/"]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw ShellError(description: "chromium \(extra.joined(separator: " ")) exited \(process.terminationStatus): \(stderr)")
        }
        return (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
    }
}
