// What SIGHUP re-reads, parsed in memory: the trusted-subnets file and the keyring file.
import XCTest
@testable import WeftRouter
import WeftMesh

final class ReloadInputTests: XCTestCase {
    private func temp(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "weft-reload-\(UInt32.random(in: 0..<UInt32.max))"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testTrustedSubnetsFileTakesCommasNewlinesAndComments() throws {
        let path = try temp("# lab networks\n10.0.0.0/8, 192.168.0.0/16 # office\n\n  fd00::/8\r\n198.18.0.0/24,\n")
        let subnets = try RouterConfig.readTrustedSubnetsFile(path)
        XCTAssertEqual(subnets.map(\.text), ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8", "198.18.0.0/24"])
        XCTAssertEqual(try RouterConfig.readTrustedSubnetsFile(try temp("")).count, 0)
    }

    func testTrustedSubnetsFileErrorsNameTheProblem() throws {
        let bad = try temp("10.0.0.0/8\n10.1.2.300/24\n")
        XCTAssertThrowsError(try RouterConfig.readTrustedSubnetsFile(bad)) { XCTAssertTrue("\($0)".contains("10.1.2.300/24"), "\($0)") }
        XCTAssertThrowsError(try RouterConfig.readTrustedSubnetsFile("/nonexistent/trusted")) { XCTAssertTrue("\($0)".contains("/nonexistent/trusted")) }
    }

    func testFlagAndFileCombineWithoutRepeats() throws {
        let flag = try Subnet.parseList("10.0.0.0/8,172.16.0.0/12")
        let file = try Subnet.parseList("172.16.0.0/12,198.18.0.0/24")
        XCTAssertEqual(RouterConfig.combineTrusted(flag, file).map(\.text), ["10.0.0.0/8", "172.16.0.0/12", "198.18.0.0/24"])
    }

    func testKeyringReadRefusesDamageAndPromotesAccepted() throws {
        XCTAssertThrowsError(try Keyring.read(path: try temp("{ not json")))
        let damaged = try temp(#"{"format":1,"entries":[{"id":"zz","state":"active","addedAt":"x","psk":"00"}]}"#)
        XCTAssertThrowsError(try Keyring.read(path: damaged))
        XCTAssertNil(try Keyring.read(path: "/nonexistent/keyring.json"))
        let psk = String(repeating: "ab", count: 32)
        let entries = [KeyringEntry(id: "0123456789abcdef", state: .accepted, addedAt: "a", retireAt: nil, psk: psk),
                       KeyringEntry(id: "fedcba9876543210", state: .accepted, addedAt: "b", retireAt: nil, psk: psk)]
        XCTAssertEqual(try Keyring.promoteNewestAccepted(entries, path: "k").map(\.state), [.accepted, .active])
        XCTAssertThrowsError(try Keyring.promoteNewestAccepted(entries.map { var e = $0; e.state = .retired; return e }, path: "k"))
    }

    /// A password file others can read or change is warned about with the file and the fix; 0600 and 0400 are not.
    func testPasswordFileWarningNamesTheFileAndTheFix() {
        let warning = LaunchInputs.passwordFileWarning(file: "/etc/weft/password", mode: 0o100644)
        XCTAssertEqual(warning, "password file /etc/weft/password is readable or writable by group or others (mode 644); "
                       + "run `chmod 600 /etc/weft/password`")
        XCTAssertNotNil(LaunchInputs.passwordFileWarning(file: "p", mode: 0o100602))
        XCTAssertNil(LaunchInputs.passwordFileWarning(file: "p", mode: 0o100600))
        XCTAssertNil(LaunchInputs.passwordFileWarning(file: "p", mode: 0o100400))
    }
}
