// One router per data dir and per control socket: a second launch is refused with a message that
// names the holder (and says so before it would fail on the metrics port or the bridge); a router
// killed with SIGKILL leaves nothing that blocks the next launch on its data dir.
import Foundation
import XCTest

final class LaunchExclusionTests: XCTestCase {
    /// Runs a second `weft launch` in host `index`'s namespace and waits for it to end (it must be refused).
    private func secondLaunch(_ net: TestNet, in index: Int, _ args: [String]) throws -> (status: Int32, output: String) {
        try Shell.run(["timeout", "20", "env", "WEFT_PASSWORD=correct horse battery", "ip", "netns", "exec", net.host(index).namespace,
                       binary("weft"), "launch"] + args, check: false)
    }

    func testSecondRouterOnTheSameDataDirIsRefusedNamingTheHolder() throws {
        try requireRoot()
        let net = try TestNet(hosts: 2)
        defer { net.cleanup() }
        try net.launch(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
        let lockText = try String(contentsOfFile: "\(net.host(1).dataDir)/lock", encoding: .utf8)
        let holder = try XCTUnwrap(Int32(lockText.trimmingCharacters(in: .whitespacesAndNewlines)), lockText)
        XCTAssertTrue(try String(contentsOfFile: "/proc/\(holder)/cmdline", encoding: .utf8).contains("weft"), "the lock names the router")

        // Another namespace, another socket, the same data dir: refused, naming the first router.
        let result = try secondLaunch(net, in: 2, ["--data-dir", net.host(1).dataDir, "--socket", net.host(2).socket, "--metrics-addr", "off"])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("a router is already running on data dir \(net.host(1).dataDir) (pid \(holder),"), result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: net.host(2).socket), "the second router started")
        XCTAssertEqual(try net.status(1).peers, 1, "the first router is unaffected")
    }

    /// The same namespace, another data dir, the same socket and metrics port: the running router
    /// is named, not the metrics port that the second could not bind.
    func testSecondLaunchOnTheSameSocketSaysARouterIsRunningBeforeTheMetricsPort() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        try net.launch(1, extraArgs: ["--metrics-addr", "127.0.0.1:6782"])
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
        let result = try secondLaunch(net, in: 1, ["--data-dir", "\(net.directory)/second", "--socket", net.host(1).socket,
                                                   "--metrics-addr", "127.0.0.1:6782"])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("a router is already running on control socket \(net.host(1).socket)"), result.output)
        XCTAssertFalse(result.output.contains("metrics"), result.output)
        XCTAssertEqual(try net.status(1).peers, 1, "the first router is unaffected")
    }

    func testRouterKilledWithSigkillLeavesNoLockBehind() throws {
        try requireRoot()
        let net = try TestNet(hosts: 1)
        defer { net.cleanup() }
        try net.launch(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
        net.kill(1, signal: SIGKILL)
        net.router(1)?.waitUntilExit()
        try net.launch(1)
        XCTAssertTrue(net.waitUntil(timeout: 10) { try net.status(1).peers >= 1 }, net.log(1))
    }
}
