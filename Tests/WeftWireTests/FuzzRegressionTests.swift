// Inputs on which a fuzz target once broke a promise (Tests/Fuzz/regressions, docs/fuzzing.md),
// fed to the codec they broke.
import WeftTestSupport
import XCTest
@testable import WeftWire

final class FuzzRegressionTests: XCTestCase {
    /// 185 bytes of invalid UTF-8 read as 555 bytes of replacement characters: the decoded text
    /// is cut to the 512 bytes REFUSE carries, so it encodes back to itself.
    func testRefuseTextOfReplacementCharactersIsCutTo512Bytes() throws {
        let input = try FuzzRegressions.input("refuse", "replacement-characters-over-512-bytes")
        let refusal = try Refuse.decode(input)
        XCTAssertLessThanOrEqual(refusal.text.utf8.count, Refuse.maxTextBytes)
        XCTAssertEqual(try Refuse.decode(refusal.encode()), refusal)
    }

    /// A fragment at offset 65512 with 1250 bytes more: its pieces' offsets would not fit 13 bits
    /// (they would spill into the flags). Such a packet is not cut (and, without DF, dropped).
    func testFragmentWhoseOffsetAndLengthPass64KiBIsNotCut() throws {
        let input = try FuzzRegressions.input("icmp-too-big", "fragment-offset-wraps")
        let mtu = Int(input[0]) << 8 | Int(input[1])
        let frame = Array(input[2...])
        let pieces = frame.withUnsafeBytes { IPv4Fragments.count(frame: $0.baseAddress!, length: frame.count, mtu: mtu) }
        XCTAssertEqual(pieces, 0)
    }
}
