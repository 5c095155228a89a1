// `weft launch` refuses bad configuration at start with a message that says what to fix and
// exit status 2. No privileges needed: validation happens before anything is created.
import Foundation
import XCTest

final class LaunchValidationTests: XCTestCase {
    private func launch(_ args: [String], password: String?) throws -> (status: Int32, output: String) {
        let dir = NSTemporaryDirectory() + "weft-validate-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
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

    /// `weft launch ARGS` (with a password) exits 2 saying each of `expected`; the output.
    @discardableResult
    private func assertRefused(_ args: [String], saying expected: String..., file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try launch(args, password: "long enough password")
        XCTAssertEqual(result.status, 2, result.output, file: file, line: line)
        for text in expected { XCTAssertTrue(result.output.contains(text), result.output, file: file, line: line) }
        return result.output
    }

    /// The peer name is the bridge's MAC: a multicast or all-zero one is refused at parse time.
    func testMulticastAndZeroPeerNamesAreRefused() throws {
        try assertRefused(["--name", "03:00:00:00:00:01"], saying: "is a multicast MAC address", "02:00:00:00:00:01")
        try assertRefused(["--name", "00:00:00:00:00:00"], saying: "is all zeros")
    }

    /// A negative value is a value to refuse with a reason, not the parser's "Missing value".
    func testNegativeMTUAndRekeyIntervalSayTheValueMustBePositive() throws {
        let mtu = try assertRefused(["--mtu", "-1"], saying: "--mtu -1 is out of range: it must be a positive number")
        let rekey = try assertRefused(["--rekey-interval", "-5s"], saying: "--rekey-interval -5s is negative: it must be a positive duration")
        XCTAssertFalse(mtu.contains("Missing value") || rekey.contains("Missing value"))
    }

    func testNicknameOver64BytesIsRefused() throws {
        try assertRefused(["--nickname", String(repeating: "n", count: 65)], saying: "--nickname is 65 bytes long; use at most 64")
    }

    func testTrustedSubnetWithHostBitsIsRefusedWithTheNetwork() throws {
        try assertRefused(["--trusted-subnets", "10.66.0.5/24"], saying: "'10.66.0.5/24' has host bits set: did you mean 10.66.0.0/24?")
    }

    /// Two password sources would leave it unclear which one the router uses: refused.
    func testBothPasswordSourcesAreRefused() throws {
        let file = NSTemporaryDirectory() + "weft-validate-pw-\(UInt32.random(in: 0..<UInt32.max))"
        try "a file network password\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try assertRefused(["--password-file", file], saying: "both WEFT_PASSWORD and --password-file \(file) are given")
    }

    /// A data dir that is a file: a plain message, not Foundation's error dump; a socket in a
    /// directory that does not exist: refused, the directory not created.
    func testDataDirThatIsAFileAndSocketInAMissingDirectoryAreRefused() throws {
        let file = NSTemporaryDirectory() + "weft-validate-file-\(UInt32.random(in: 0..<UInt32.max))"
        try "not a directory\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let dataDir = try Shell.run(["env", "WEFT_PASSWORD=long enough password", binary("weft"), "launch", "--data-dir", file,
                                     "--socket", NSTemporaryDirectory() + "weft-validate-unused.sock", "--metrics-addr", "off"], check: false)
        XCTAssertEqual(dataDir.status, 2, dataDir.output)
        XCTAssertTrue(dataDir.output.contains("--data-dir \(file) is a file, not a directory"), dataDir.output)
        XCTAssertFalse(dataDir.output.contains("NSCocoaErrorDomain"), dataDir.output)
        let missing = NSTemporaryDirectory() + "weft-validate-missing-\(UInt32.random(in: 0..<UInt32.max))"
        try assertRefused(["--socket", "\(missing)/x.sock"], saying: "the directory \(missing) does not exist")
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing), "the directory was created")
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
