// PacketKey's AES-256-GCM runs from libsodium's precomputed state (beforenm/afternm); these tests
// hold it to the one-shot libsodium calls byte for byte, for random keys, counters, header and
// body lengths (empty and larger than one MTU among them), and check that a changed tag is refused.
import CSodium
import XCTest
@testable import WeftCrypto

final class PacketKeyPrecomputedTests: XCTestCase {
    /// Body lengths that matter: empty, around one AES block, around the MTU, and well past it
    /// (a 64 KiB TSO super-frame); random ones are added in the test.
    static let edgeLengths = [0, 1, 15, 16, 17, 1419, 1420, 1500, 1501, 9000, 65_535]

    /// What the one-shot libsodium call gives for the same key, nonce, header and body:
    /// ciphertext followed by the 16-byte tag.
    static func oneShot(_ cipher: DataCipher, key: [UInt8], counter: UInt64, header: [UInt8], body: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: body.count + 16)
        var nonce = PacketKey.nonce(counter)
        withUnsafeBytes(of: &nonce) { n in
            let np = n.baseAddress!.assumingMemoryBound(to: UInt8.self)
            out.withUnsafeMutableBufferPointer { o in
                let c = o.baseAddress!, tag = o.baseAddress! + body.count
                switch cipher {
                case .aes256GCM:
                    _ = crypto_aead_aes256gcm_encrypt_detached(c, tag, nil, body, UInt64(body.count), header, UInt64(header.count), nil, np, key)
                case .chaCha20Poly1305:
                    _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, tag, nil, body, UInt64(body.count), header, UInt64(header.count), nil, np, key)
                }
            }
        }
        return out
    }

    func testSealMatchesTheOneShotCallAndOpenRefusesAChangedTag() throws {
        let ciphers = DataCipher.allowedOnThisCPU
        if !ciphers.contains(.aes256GCM) { throw XCTSkip("this CPU has no AES-NI; only ChaCha20-Poly1305 runs") }
        var rng = SystemRandomNumberGenerator()
        for cipher in ciphers {
            let lengths = Self.edgeLengths + (0..<40).map { _ in Int.random(in: 0...9000, using: &rng) }
            for (i, bodyLength) in lengths.enumerated() {
                let keyBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let key = PacketKey(cipher: cipher, key: keyBytes)
                let counter = i == 0 ? UInt64.max : UInt64.random(in: 0...UInt64.max, using: &rng)
                let header = (0..<[0, 16, Int.random(in: 1...64, using: &rng)][i % 3]).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let body = (0..<bodyLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let what = "\(cipher) body \(bodyLength) header \(header.count) counter \(counter)"

                var packet = header + body + [UInt8](repeating: 0, count: 16)
                let sealed = packet.withUnsafeMutableBytes {
                    key.seal($0.baseAddress!, headerLength: header.count, bodyLength: bodyLength, counter: counter)
                }
                XCTAssertEqual(sealed, packet.count, what)
                XCTAssertEqual(Array(packet[..<header.count]), header, "header changed: \(what)")
                XCTAssertEqual(Array(packet[header.count...]),
                               Self.oneShot(cipher, key: keyBytes, counter: counter, header: header, body: body), what)

                var tampered = packet
                tampered[tampered.count - 1 - Int.random(in: 0..<16, using: &rng)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                XCTAssertEqual(tampered.withUnsafeMutableBytes {
                    key.open($0.baseAddress!, headerLength: header.count, length: sealed, counter: counter)
                }, -1, "changed tag accepted: \(what)")

                let opened = packet.withUnsafeMutableBytes {
                    key.open($0.baseAddress!, headerLength: header.count, length: sealed, counter: counter)
                }
                XCTAssertEqual(opened, bodyLength, what)
                XCTAssertEqual(Array(packet[header.count..<(header.count + bodyLength)]), body, what)
            }
        }
    }

    /// A rekey makes a second key while the first is still in use: each has its own state, and
    /// dropping the new one leaves the old one sealing as before.
    func testTwoLiveKeysKeepTheirOwnState() throws {
        guard DataCipher.allowedOnThisCPU.contains(.aes256GCM) else { throw XCTSkip("this CPU has no AES-NI") }
        let oldBytes = [UInt8](repeating: 1, count: 32), body = Array("frame".utf8)
        let old = PacketKey(cipher: .aes256GCM, key: oldBytes)
        func sealed(_ key: PacketKey) -> [UInt8] {
            var p = body + [UInt8](repeating: 0, count: 16)
            _ = p.withUnsafeMutableBytes { key.seal($0.baseAddress!, headerLength: 0, bodyLength: body.count, counter: 7) }
            return p
        }
        let expected = Self.oneShot(.aes256GCM, key: oldBytes, counter: 7, header: [], body: body)
        do {
            let new = PacketKey(cipher: .aes256GCM, key: [UInt8](repeating: 2, count: 32))
            XCTAssertNotEqual(sealed(new), expected)
            XCTAssertEqual(sealed(old), expected)
        }
        XCTAssertEqual(sealed(old), expected)
    }
}
