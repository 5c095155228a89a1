// The CLI's exit statuses (docs/operations.md, "Exit status"): 0 ok, 1 the operation failed, 2
// bad usage or input. No privileges and no router needed: these are refused before any call, or
// fail for want of a router.
import Foundation
import XCTest

final class ExitStatusTests: XCTestCase {
    private func weft(_ args: [String]) throws -> (status: Int32, output: String) {
        try Shell.run([binary("weft")] + args, check: false)
    }

    func testBadUsageExitsTwo() throws {
        let unknown = try weft(["stauts"])
        XCTAssertEqual(unknown.status, 2, unknown.output)
        XCTAssertTrue(unknown.output.contains("unknown command 'weft stauts'; did you mean 'weft status'?"), unknown.output)
        let nested = try weft(["password", "lsit"])
        XCTAssertEqual(nested.status, 2, nested.output)
        XCTAssertTrue(nested.output.contains("did you mean 'weft password list'?"), nested.output)
        for args in [["status", "--bogus"], ["attach"], ["status", "nonsense"], ["doctor", "--sample-seconds", "100"], ["launch", "--port", "x"]] {
            let result = try weft(args)
            XCTAssertEqual(result.status, 2, "\(args): \(result.output)")
        }
    }

    /// A peer that is neither an IP address nor a plausible host name: refused by launch, connect
    /// and forget with a message naming it, before any router is asked.
    func testMalformedPeerIsRefusedByLaunchConnectAndForget() throws {
        let dir = NSTemporaryDirectory() + "weft-exit-\(UInt32.random(in: 0..<UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for peer in ["10.55.0.999", "bad:port:x"] {
            let launch = try Shell.run(["env", "WEFT_PASSWORD=long enough password", binary("weft"), "launch", "--data-dir", dir,
                                        "--socket", "\(dir)/s.sock", "--metrics-addr", "off", peer], check: false)
            XCTAssertEqual(launch.status, 2, launch.output)
            XCTAssertTrue(launch.output.contains("'\(peer)' is neither an IP address"), launch.output)
            for command in ["connect", "forget"] {
                let result = try weft([command, peer, "--socket", "\(dir)/none.sock"])
                XCTAssertEqual(result.status, 2, "\(command) \(peer): \(result.output)")
                XCTAssertTrue(result.output.contains("'\(peer)' is neither an IP address"), result.output)
            }
        }
        // A port of 0 or over 65535: the same, in plain words.
        for peer in ["10.66.0.1:0", "10.66.0.1:99999"] {
            let launch = try Shell.run(["env", "WEFT_PASSWORD=long enough password", binary("weft"), "launch", "--data-dir", dir,
                                        "--socket", "\(dir)/s.sock", "--metrics-addr", "off", peer], check: false)
            XCTAssertEqual(launch.status, 2, launch.output)
            XCTAssertTrue(launch.output.contains("'\(peer)' has no valid port (1–65535)"), launch.output)
            let connect = try weft(["connect", peer, "--socket", "\(dir)/none.sock"])
            XCTAssertEqual(connect.status, 2, connect.output)
            XCTAssertTrue(connect.output.contains("'\(peer)' has no valid port (1–65535)"), connect.output)
            XCTAssertFalse(connect.output.contains("expected"), connect.output)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/s.sock"), "launch started a router")
    }

    func testAFailedOperationExitsOne() throws {
        let result = try weft(["connect", "198.18.0.9", "--socket", "/nonexistent/weft.sock"])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("no router answers on /nonexistent/weft.sock"), result.output)
        XCTAssertEqual(try weft(["--version"]).status, 0)
        XCTAssertEqual(try weft(["help", "status"]).status, 0)
    }
}
