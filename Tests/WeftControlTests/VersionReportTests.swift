// `weft version --json`: its field names (a public contract) and where its facts come from.
import Foundation
import WeftControl
import WeftCrypto
import XCTest

final class VersionReportTests: XCTestCase {
    func testFieldsAndFacts() throws {
        let report = VersionReport(version: "1.2.3", commit: "0123456789ab")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["version", "commit", "protocolVersions", "ciphers"])
        XCTAssertEqual(report.protocolVersions, [2])
        // The ciphers are the ones the hello offers: one rule for both.
        XCTAssertEqual(report.ciphers, DataCipher.allowedOnThisCPU.map(\.rawValue))
        XCTAssertEqual(report.ciphers.first, "chacha20-poly1305", "ChaCha20-Poly1305 runs on every CPU")
        XCTAssertEqual(report.ciphers.contains("aes-256-gcm"), DataCipher.aesGCMAvailable)
        XCTAssertEqual(DataCipher.helloBits([.chaCha20Poly1305, .aes256GCM]), 0b11, "docs/protocol.md §3.4: bit 0 ChaCha20, bit 1 AES")
        XCTAssertTrue(report.text.hasPrefix("weft 1.2.3 (commit 0123456789ab)\n"), report.text)
    }
}
