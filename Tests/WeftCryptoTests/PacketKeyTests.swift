import XCTest
@testable import WeftCrypto

final class PacketKeyTests: XCTestCase {
    let keyBytes = (0..<32).map { UInt8($0 * 7 & 0xFF) }

    /// With no header, in-place sealing must give exactly what the link sealer gives for the
    /// same key and counter: same cipher, same nonce layout.
    func testMatchesTheLinkSealerNonceLayout() {
        var sealer = LinkSealer(key: keyBytes)
        let key = PacketKey(cipher: .chaCha20Poly1305, key: keyBytes)
        for counter in 0..<3 {
            let plain = Array("frame \(counter)".utf8)
            let expected = sealer.seal(plain)
            var buffer = plain + [UInt8](repeating: 0, count: 16)
            let n = buffer.withUnsafeMutableBytes { key.seal($0.baseAddress!, headerLength: 0, bodyLength: plain.count, counter: UInt64(counter)) }
            XCTAssertEqual(Array(buffer[..<n]), expected)
        }
    }

    func testRoundTripBindsHeaderAndCounterForBothCiphers() throws {
        for cipher in DataCipher.allowedOnThisCPU {
            let key = PacketKey(cipher: cipher, key: keyBytes)
            let header: [UInt8] = Array(1...16)
            let body = Array("an ethernet frame, more or less".utf8)
            var packet = header + body + [UInt8](repeating: 0, count: 16)
            let sealedLength = packet.withUnsafeMutableBytes { key.seal($0.baseAddress!, headerLength: 16, bodyLength: body.count, counter: 1 << 40) }
            XCTAssertEqual(sealedLength, 16 + body.count + 16)
            XCTAssertNotEqual(Array(packet[16..<(16 + body.count)]), body)
            let sealed = packet
            // Wrong counter, flipped header bit, flipped body bit, flipped tag bit: all rejected.
            for tamper in 0..<4 {
                var copy = sealed
                var counter: UInt64 = 1 << 40
                switch tamper {
                case 0: counter += 1
                case 1: copy[3] ^= 1
                case 2: copy[20] ^= 0x80
                default: copy[copy.count - 1] ^= 1
                }
                let n = copy.withUnsafeMutableBytes { key.open($0.baseAddress!, headerLength: 16, length: sealedLength, counter: counter) }
                XCTAssertEqual(n, -1, "\(cipher) tamper \(tamper)")
            }
            var good = sealed
            let n = good.withUnsafeMutableBytes { key.open($0.baseAddress!, headerLength: 16, length: sealedLength, counter: 1 << 40) }
            XCTAssertEqual(n, body.count)
            XCTAssertEqual(Array(good[16..<(16 + n)]), body)
            var short = [UInt8](repeating: 0, count: 20)
            XCTAssertEqual(short.withUnsafeMutableBytes { key.open($0.baseAddress!, headerLength: 16, length: 20, counter: 0) }, -1)
        }
    }
}
