// REVOCATIONS (docs/protocol.md §3.11): round trip and the strict decoder.
import WeftWire
import XCTest

final class RevocationCodecTests: XCTestCase {
    func record(_ n: UInt8, nickname: String = "host") -> Revocation {
        Revocation(key: [UInt8](repeating: n, count: 32), name: PeerName(value: 0x0200_0000_0000 | UInt64(n)),
                   nickname: nickname, revokedBy: PeerName(value: 0x0200_0000_00FF), at: 1_764_800_000 + UInt64(n))
    }

    func testRoundTrip() throws {
        let list = RevocationList(records: [record(1), record(2, nickname: ""), record(3, nickname: "dc-2 höst")])
        let bytes = list.encode()
        XCTAssertEqual(bytes.count, 2 + 3 * 53 + 4 + 0 + 10)
        XCTAssertEqual(try RevocationList.decode(bytes), list)
        XCTAssertEqual(try RevocationList.decode(RevocationList(records: []).encode()), RevocationList(records: []))
    }

    func testLongNicknameIsCutToTheTopologyLimit() throws {
        let long = String(repeating: "é", count: 40) // 80 bytes
        let decoded = try RevocationList.decode(RevocationList(records: [record(1, nickname: long)]).encode())
        XCTAssertEqual(decoded.records[0].nickname, String(repeating: "é", count: 32))
    }

    func testMalformedIsRefused() {
        let good = RevocationList(records: [record(1), record(2)]).encode()
        // Every truncation.
        for cut in 0..<good.count {
            XCTAssertThrowsError(try RevocationList.decode(Array(good[..<cut])), "cut at \(cut)")
        }
        // Bytes after the last record.
        XCTAssertThrowsError(try RevocationList.decode(good + [0]))
        // A count larger than the bytes could hold, and one over the cap.
        var forged = good
        forged[0] = 0x00; forged[1] = 0x03
        XCTAssertThrowsError(try RevocationList.decode(forged))
        XCTAssertThrowsError(try RevocationList.decode([0xFF, 0xFF] + [UInt8](repeating: 0, count: 53 * 10)))
        // A nickname over 64 bytes, and one that is not UTF-8.
        var w = [UInt8](RevocationList(records: [record(1, nickname: "")]).encode().dropLast())
        XCTAssertThrowsError(try RevocationList.decode(w + [65] + [UInt8](repeating: 0x61, count: 65)))
        w.append(contentsOf: [2, 0xC3, 0x28])
        XCTAssertThrowsError(try RevocationList.decode(w))
    }
}
