// `weft launch` refuses bad configuration at start with a message that says what to fix and
// exit status 2. No privileges needed: validation happens before anything is created.
import Foundation
import XCTest

final class LaunchValidationTests: XCTestCase {
    private func launch(_ args: [String], password: String?) throws -> (status: Int32, output: String) {
        let dir = NSTemporaryDirectory() + "weft-validate-\(UInt32.random(in: 0..<UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ["env", "-u", "WEFT_PASSWORD"]
        if let password { env = ["env", "WEFT_PASSWORD=\(password)"] }
        return try Shell.run(env + [binary("weft"), "launch", "--data-dir", dir, "--socket", "\(dir)/s.sock"] + args, check: false)
    }

    func testShortPasswordIsRefused() throws {
        let result = try launch([], password: "short")
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.output.contains("at least 12"), result.output)
    }

    func testUnreadablePasswordFileIsRefused() throws {
        let result = try launch(["--password-file", "/nonexistent/weft-password"], password: nil)
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.output.contains("/nonexistent/weft-password"), result.output)
    }

    func testMalformedCIDRIsRefused() throws {
        let result = try launch(["--trusted-subnets", "10.0.0.0/8,10.1.2.300/24"], password: "long enough password")
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.output.contains("10.1.2.300/24"), result.output)
    }

    func testPasswordIsNotAcceptedAsAFlag() throws {
        let result = try launch(["--password", "long enough password"], password: nil)
        XCTAssertNotEqual(result.status, 0)
    }

    func testBadPeerNameIsRefused() throws {
        let result = try launch(["--name", "not-a-name"], password: "long enough password")
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.output.contains("aa:bb") || result.output.contains("02:ab"), result.output)
    }

    func testBadAllocationRangeAndConsensusAreRefused() throws {
        let range = try launch(["--ipalloc-range", "10.32.0.1/12"], password: "long enough password")
        XCTAssertEqual(range.status, 2)
        XCTAssertTrue(range.output.contains("did you mean 10.32.0.0/12"), range.output)
        let consensus = try launch(["--ipalloc-init", "consensus=0"], password: "long enough password")
        XCTAssertEqual(consensus.status, 2)
        XCTAssertTrue(consensus.output.contains("consensus=N"), consensus.output)
    }

    /// A damaged <data-dir>/ipam.json stops the launch with the file named and is left as it was.
    func testDamagedAddressStateIsRefusedAndKept() throws {
        let dir = NSTemporaryDirectory() + "weft-validate-\(UInt32.random(in: 0..<UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let damaged = #"{"range": "10.32.0.0/12", "runs": [{"start": 0, "count": 5, "owner": "02:00:00:00:00:01", "version": 1}], "#
        try damaged.write(toFile: "\(dir)/ipam.json", atomically: true, encoding: .utf8)
        let result = try Shell.run(["env", "WEFT_PASSWORD=long enough password", binary("weft"), "launch", "--data-dir", dir,
                                    "--socket", "\(dir)/s.sock", "--metrics-addr", "off"], check: false)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("\(dir)/ipam.json") && result.output.contains("restore it from a backup"), result.output)
        XCTAssertEqual(try String(contentsOfFile: "\(dir)/ipam.json", encoding: .utf8), damaged, "never overwritten")
    }
}
