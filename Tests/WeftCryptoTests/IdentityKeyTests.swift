// The identity key's file bytes and fingerprint, in memory (the file on disk: IdentityKeyFileTests).
import XCTest
@testable import WeftCrypto

final class IdentityKeyTests: XCTestCase {
    let fixed = try! IdentityKey(privateKey: Array(0..<32))

    /// Public key and fingerprint from Python: cryptography's X25519 and hashlib.blake2b(digest_size=16).
    func testKnownAnswer() {
        XCTAssertEqual(Hex.encode(fixed.publicKey), "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f")
        XCTAssertEqual(fixed.fingerprint, "8dee34f7d4d874b690c903cb6afa5216")
    }

    func testFileRoundTripAndShape() throws {
        let bytes = fixed.fileBytes()
        XCTAssertEqual(try IdentityKey(fileBytes: bytes), fixed)
        XCTAssertEqual(bytes.last, UInt8(ascii: "\n"))
        let object = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
        XCTAssertEqual(Set(object.keys), ["format", "type", "publicKey", "privateKey"])
        XCTAssertEqual(object["format"] as? Int, 1)
        XCTAssertEqual(object["type"] as? String, "x25519")
        let fresh = IdentityKey.generate()
        XCTAssertNotEqual(fresh, IdentityKey.generate())
        XCTAssertEqual(try IdentityKey(fileBytes: fresh.fileBytes()), fresh)
    }

    func testPrintingShowsNoPrivateKey() {
        let text = "\(fixed) \(String(describing: fixed)) \(String(reflecting: fixed))"
        XCTAssertFalse(text.contains(Hex.encode(fixed.privateKey)), text)
        XCTAssertTrue(text.contains(fixed.fingerprint))
    }

    func testDamagedFilesAreRefused() throws {
        let good = String(decoding: fixed.fileBytes(), as: UTF8.self)
        let otherPublic = Hex.encode(IdentityKey.generate().publicKey)
        let cases: [(String, String)] = [
            ("", "not an identity key file"),
            (String(good.prefix(40)), "not an identity key file"),
            (good.replacingOccurrences(of: "\"format\" : 1", with: "\"format\" : 2"), "unknown format 2"),
            (good.replacingOccurrences(of: "x25519", with: "ed25519"), "key type ed25519"),
            (good.replacingOccurrences(of: Hex.encode(fixed.publicKey), with: otherPublic), "does not belong"),
            (good.replacingOccurrences(of: Hex.encode(fixed.privateKey), with: "00ff"), "privateKey is not 32 bytes"),
            (good.replacingOccurrences(of: Hex.encode(fixed.publicKey), with: "zz"), "publicKey is not 32 bytes"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try IdentityKey(fileBytes: Array(text.utf8)), expected) {
                XCTAssertTrue("\($0)".contains(expected), "\($0) for \(expected)")
            }
        }
    }
}

final class PeerNameDerivationTests: XCTestCase {
    /// Every derived name is locally administered and unicast, and different keys give different names.
    func testDerivedNamesKeepTheLocalUnicastForm() {
        var names = Set<[UInt8]>()
        for _ in 0..<200 {
            let name = IdentityKey.generate().peerNameBytes
            XCTAssertEqual(name.count, 6)
            XCTAssertEqual(name[0] & 0x03, 0x02)
            names.insert(name)
        }
        XCTAssertEqual(names.count, 200)
    }

    /// From Keys/vectors/weft-identity.json (generated in Python): the first entry.
    func testKnownAnswer() throws {
        let key = try IdentityKey(privateKey: Array(0..<32))
        XCTAssertEqual(key.peerNameBytes, [0x8a, 0xae, 0x16, 0xe6, 0x44, 0xb7])
    }
}
