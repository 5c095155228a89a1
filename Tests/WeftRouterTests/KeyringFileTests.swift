// keyring.json on disk: read and checked, never rewritten at start, refused (and left as it is)
// when damaged, of an unknown format, or holding an id that is not its PSK's; fields Weft does
// not know survive when Weft writes the file.
import XCTest
@testable import WeftRouter
import WeftCrypto

final class KeyringFileTests: XCTestCase {
    private let psk = [UInt8](repeating: 0x11, count: 32)
    private var id: String { PreSharedKey(key: psk).id.description }
    private var hex: String { String(repeating: "11", count: 32) }

    /// A data dir holding `keyring` as keyring.json; removed after the test.
    private func dataDir(_ keyring: String) throws -> String {
        let dir = NSTemporaryDirectory() + "weft-keyring-\(UInt32.random(in: 0..<UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try keyring.write(toFile: "\(dir)/keyring.json", atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    private func inode(_ path: String) -> UInt64 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : 0
    }

    /// Loading refuses with a message containing `expected`, and the file stays byte for byte.
    private func assertRefusedAndKept(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try dataDir(text)
        XCTAssertThrowsError(try Keyring.load(dataDir: dir, launchPSK: PreSharedKey(key: psk), log: { _ in }), file: file, line: line) {
            XCTAssertTrue("\($0)".contains(expected), "\($0)", file: file, line: line)
        }
        XCTAssertEqual(try String(contentsOfFile: "\(dir)/keyring.json", encoding: .utf8), text, "never overwritten", file: file, line: line)
    }

    func testStartReadsTheKeyringWithoutRewritingIt() throws {
        // Hand-written: unsorted, compact, the launch password absent and no active entry.
        let text = #"{"format":1,"entries":[{"state":"accepted","id":"\#(id)","psk":"\#(hex)","addedAt":"2026-01-01T00:00:00Z"}]}"#
        let dir = try dataDir(text)
        let before = inode("\(dir)/keyring.json")
        var logged: [String] = []
        let launch = PreSharedKey(key: [UInt8](repeating: 0x22, count: 32))
        let keyring = try XCTUnwrap(try Keyring.load(dataDir: dir, launchPSK: launch, log: { logged.append($0) }))
        XCTAssertNotNil(keyring.accepted(launch.id), "the launch password is accepted while the router runs")
        XCTAssertNotNil(keyring.active, "the newest accepted entry is promoted, in memory")
        XCTAssertTrue(logged.contains { $0.contains("not written to the file") }, "\(logged)")
        XCTAssertEqual(try String(contentsOfFile: "\(dir)/keyring.json", encoding: .utf8), text)
        XCTAssertEqual(inode("\(dir)/keyring.json"), before, "the same file, not a new one")
    }

    func testUnknownFormatIsRefusedAndKept() throws {
        let text = #"{"format":2,"entries":[{"id":"\#(id)","state":"active","addedAt":"x","psk":"\#(hex)"}]}"#
        try assertRefusedAndKept(text, "has keyring format 2, but this Weft reads only format 1")
    }

    func testAnIdThatIsNotItsPSKsIsRefusedAndKept() throws {
        let text = #"{"format":1,"entries":[{"id":"0123456789abcdef","state":"active","addedAt":"x","psk":"\#(hex)"}]}"#
        try assertRefusedAndKept(text, "entry 0123456789abcdef does not match its psk, whose id is \(id)")
    }

    func testDamagedKeyringsAreRefusedAndKept() throws {
        let whole = #"{"format":1,"entries":[{"id":"\#(id)","state":"active","addedAt":"x","psk":"\#(hex)"}]}"#
        try assertRefusedAndKept(String(whole.prefix(40)), "is not a Weft keyring")  // truncated
        try assertRefusedAndKept("", "is not a Weft keyring")  // empty
        try assertRefusedAndKept("\u{7}garbage\u{0}", "is not a Weft keyring")
        try assertRefusedAndKept(#"{"format":1,"keys":[]}"#, "is not a Weft keyring")  // wrong schema
        try assertRefusedAndKept(#"{"format":1,"entries":[{"id":"\#(id)","state":"active","addedAt":"x","psk":"11"}]}"#, "is damaged")
    }

    func testFieldsWeftDoesNotKnowSurviveItsWrites() throws {
        let text = #"{"format":1,"comment":"lab mesh","rotation":{"every":"30d","n":2},"#
            + #""entries":[{"id":"\#(id)","state":"active","addedAt":"x","psk":"\#(hex)","owner":"ops","weight":1}]}"#
        let dir = try dataDir(text)
        let keyring = try XCTUnwrap(try Keyring.load(dataDir: dir, launchPSK: nil, log: { _ in }))
        keyring.add(PreSharedKey(key: [UInt8](repeating: 0x33, count: 32)), state: .accepted)  // as `weft password add` does
        try keyring.save()
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/keyring.json"))) as! [String: Any]
        XCTAssertEqual(written["comment"] as? String, "lab mesh")
        XCTAssertEqual((written["rotation"] as? [String: Any])?["every"] as? String, "30d")
        let entries = written["entries"] as! [[String: Any]]
        XCTAssertEqual(entries.count, 2)
        XCTAssertEqual(entries[0]["owner"] as? String, "ops")
        XCTAssertEqual(entries[0]["weight"] as? Int, 1, "a number stays a number")
        XCTAssertNotNil(try Keyring.read(path: "\(dir)/keyring.json"), "what Weft wrote reads back")
    }

    /// A password retired because of a revocation keeps its mark across a write and a read; an
    /// unmarked entry is written without the field; made active again, it loses the mark.
    func testPinnedOnlyMarkIsWrittenReadAndClearedByUse() throws {
        let text = #"{"format":1,"entries":[{"id":"\#(id)","state":"active","addedAt":"x","psk":"\#(hex)"}]}"#
        let dir = try dataDir(text)
        let keyring = try XCTUnwrap(try Keyring.load(dataDir: dir, launchPSK: nil, log: { _ in }))
        let next = PreSharedKey(key: [UInt8](repeating: 0x33, count: 32))
        keyring.add(next, state: .accepted)
        try keyring.use(next.id)
        let old = PreSharedKey(key: psk).id
        keyring.scheduleRetirement(old, at: Date().addingTimeInterval(600), pinnedOnly: true)
        keyring.scheduleRetirement(old, at: Date().addingTimeInterval(300))
        XCTAssertTrue(keyring.isPinnedOnly(old), "a later unmarked schedule keeps the mark")
        XCTAssertFalse(keyring.isPinnedOnly(next.id))
        try keyring.save()
        let written = try String(contentsOfFile: "\(dir)/keyring.json", encoding: .utf8)
        XCTAssertEqual(written.components(separatedBy: "\"pinnedOnly\" : true").count, 2, written)
        let reread = try XCTUnwrap(try Keyring.load(dataDir: dir, launchPSK: nil, log: { _ in }))
        XCTAssertTrue(reread.isPinnedOnly(old))
        try reread.use(old)
        XCTAssertFalse(reread.isPinnedOnly(old))
    }
}
