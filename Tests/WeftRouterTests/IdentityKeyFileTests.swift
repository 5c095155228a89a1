// <data-dir>/identity.key on a real file system: created once (0600), kept, and a bad file refused
// and left exactly as it was.
import XCTest
import WeftCrypto
@testable import WeftRouter

final class IdentityKeyFileTests: XCTestCase {
    private func dataDir() -> String {
        let dir = NSTemporaryDirectory() + "weft-identity-\(UInt32.random(in: 0..<UInt32.max))"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private func path(_ dir: String) -> String { dir + "/identity.key" }

    func testCreatedOnceWith0600AndKeptAcrossStarts() throws {
        let dir = dataDir()
        let first = try LaunchInputs.identityKey(dataDir: dir)
        XCTAssertEqual(LaunchInputs.fileMode(path(dir)).map { $0 & 0o777 }, 0o600)
        XCTAssertEqual(try LaunchInputs.identityKey(dataDir: dir), first)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["identity.key"], "no temporary file left")
    }

    private func assertRefusedAndUnchanged(_ dir: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        let before = FileManager.default.contents(atPath: path(dir))
        XCTAssertThrowsError(try LaunchInputs.identityKey(dataDir: dir), file: file, line: line) {
            XCTAssertTrue("\($0)".contains(expected), "\($0)", file: file, line: line)
            XCTAssertTrue("\($0)".contains(path(dir)), "\($0)", file: file, line: line)
        }
        XCTAssertEqual(FileManager.default.contents(atPath: path(dir)), before, "never overwritten", file: file, line: line)
    }

    func testCorruptedFileIsRefusedNotReplaced() throws {
        let dir = dataDir()
        let key = try LaunchInputs.identityKey(dataDir: dir)
        var bytes = key.fileBytes()
        bytes[bytes.count / 2] ^= 0x01
        try AtomicFile.write(bytes, to: path(dir), mode: 0o600)
        assertRefusedAndUnchanged(dir, "unusable")
        try AtomicFile.write([], to: path(dir), mode: 0o600)
        assertRefusedAndUnchanged(dir, "unusable")
    }

    func testGroupOrWorldReadableFileIsRefused() throws {
        let dir = dataDir()
        _ = try LaunchInputs.identityKey(dataDir: dir)
        XCTAssertEqual(chmod(path(dir), 0o644), 0)
        assertRefusedAndUnchanged(dir, "chmod 600")
        XCTAssertEqual(LaunchInputs.fileMode(path(dir)).map { $0 & 0o777 }, 0o644, "the mode is not changed behind the operator's back")
    }

    func testNotARegularFileIsRefused() throws {
        let dir = dataDir()
        try FileManager.default.createDirectory(atPath: path(dir), withIntermediateDirectories: true)
        XCTAssertThrowsError(try LaunchInputs.identityKey(dataDir: dir)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        let link = dataDir()
        try FileManager.default.createDirectory(atPath: link, withIntermediateDirectories: true)
        XCTAssertEqual(symlink("/dev/null", path(link)), 0)
        XCTAssertThrowsError(try LaunchInputs.identityKey(dataDir: link)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
    }

    func testFileProblemRule() {
        let file = UInt32(S_IFREG)
        XCTAssertNil(LaunchInputs.identityKeyFileProblem(mode: file | 0o600, owner: 0, user: 0))
        XCTAssertNil(LaunchInputs.identityKeyFileProblem(mode: file | 0o400, owner: 7, user: 7))
        XCTAssertNotNil(LaunchInputs.identityKeyFileProblem(mode: file | 0o640, owner: 0, user: 0))
        XCTAssertNotNil(LaunchInputs.identityKeyFileProblem(mode: file | 0o602, owner: 0, user: 0))
        XCTAssertTrue(LaunchInputs.identityKeyFileProblem(mode: file | 0o600, owner: 7, user: 0)?.contains("chown") == true)
        XCTAssertNotNil(LaunchInputs.identityKeyFileProblem(mode: UInt32(S_IFDIR) | 0o700, owner: 0, user: 0))
    }

    func testCreateNeverReplaces() throws {
        let dir = dataDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try AtomicFile.create([1], at: path(dir), mode: 0o600)
        XCTAssertThrowsError(try AtomicFile.create([2], at: path(dir), mode: 0o600))
        XCTAssertEqual(FileManager.default.contents(atPath: path(dir)), Data([1]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["identity.key"])
    }
}

final class PeerNameFlagTests: XCTestCase {
    let identity = try! IdentityKey(privateKey: Array(0..<32))

    func testNameComesFromTheKeyAndTheFlagOnlyChecks() throws {
        XCTAssertEqual(try LaunchInputs.peerName(given: nil, identity: identity, dataDir: "/d").description, "8a:ae:16:e6:44:b7")
        XCTAssertEqual(try LaunchInputs.peerName(given: LaunchInputs.peerName(flag: "8A:AE:16:E6:44:B7"), identity: identity, dataDir: "/d").description, "8a:ae:16:e6:44:b7")
        XCTAssertThrowsError(try LaunchInputs.peerName(given: LaunchInputs.peerName(flag: "02:00:00:00:00:01"), identity: identity, dataDir: "/d")) {
            XCTAssertTrue("\($0)".contains("this router's is 8a:ae:16:e6:44:b7; drop --name"), "\($0)")
            XCTAssertTrue("\($0)".contains("/d/identity.key"), "\($0)")
        }
        XCTAssertThrowsError(try LaunchInputs.peerName(flag: "nope")) {
            XCTAssertTrue("\($0)".contains("02:ab:cd:ef:01:23"), "\($0)")
        }
    }
}
