import WeftTestSupport
import XCTest
@testable import WeftWire

final class LinkCodecTests: XCTestCase {
    let hello = Hello(name: PeerName("02:11:22:33:44:55")!, nickname: "host-α", uid: 0xDEAD_BEEF, connectionId: 42,
                      gossipPort: 6783, sleevePort: 6783, shortId: 0x123, trustsRemote: true, fastdpCapable: false,
                      overlays: 1, ciphers: 3)

    func testHelloRoundTripAndTrailingBytesIgnored() throws {
        let bytes = hello.encode()
        XCTAssertEqual(try Hello.decode(bytes), hello)
        XCTAssertEqual(try Hello.decode(bytes + [9, 9, 9]), hello, "later versions may append fields")
    }

    func testEveryTruncationOfEveryMessageThrows() {
        let preamble = Preamble(hasPassword: true, pskId: [1, 2, 3, 4, 5, 6, 7, 8]).encode()
        for cut in 0..<preamble.count { XCTAssertThrowsError(try Preamble.decode(Array(preamble[..<cut]))) }
        let h = hello.encode()
        for cut in 0..<h.count { XCTAssertThrowsError(try Hello.decode(Array(h[..<cut]))) }
        XCTAssertThrowsError(try Refuse.decode([]))
    }

    func testRandomBytesNeverCrashDecoders() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<96, using: &rng)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if count >= 4 && Bool.random(using: &rng) { bytes.replaceSubrange(0..<4, with: Preamble.magic) }
            _ = try? Preamble.decode(bytes)
            _ = try? Hello.decode(bytes)
            _ = try? Refuse.decode(bytes)
            var decoder = FrameDecoder(limit: FrameLimits.beforeHandshake)
            decoder.append(bytes)
            while let frame = try? decoder.next() { XCTAssertLessThanOrEqual(frame.count, FrameLimits.beforeHandshake) }
        }
    }

    func testPreambleRejectsWrongMagicAndBackwardsVersions() {
        var bytes = Preamble(hasPassword: false, pskId: Array(repeating: 0, count: 8)).encode()
        XCTAssertEqual(try Preamble.decode(bytes).hasPassword, false)
        bytes[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try Preamble.decode(bytes))
        let backwards = Preamble(minVersion: 3, maxVersion: 2, hasPassword: true, pskId: Array(repeating: 0, count: 8)).encode()
        XCTAssertThrowsError(try Preamble.decode(backwards))
    }

    func testVersionNegotiationPicksHighestCommon() {
        XCTAssertEqual(LinkVersion.negotiate(localMin: 1, localMax: 3, remoteMin: 2, remoteMax: 5), 3)
        XCTAssertEqual(LinkVersion.negotiate(localMin: 1, localMax: 1, remoteMin: 1, remoteMax: 1), 1)
        XCTAssertNil(LinkVersion.negotiate(localMin: 1, localMax: 1, remoteMin: 2, remoteMax: 2))
    }

    func testFrameLengthOverTheCapIsRejectedBeforeBuffering() {
        var decoder = FrameDecoder(limit: 4096)
        decoder.append([0x7F, 0xFF, 0xFF, 0xFF])
        XCTAssertThrowsError(try decoder.next()) { error in
            guard case WireError.tooLarge = error else { return XCTFail("\(error)") }
        }
        var zero = FrameDecoder(limit: 4096)
        zero.append([0, 0, 0, 0])
        XCTAssertThrowsError(try zero.next())
    }

    func testFramesSplitAcrossReadsReassemble() throws {
        let frames = [[UInt8](repeating: 1, count: 10), [UInt8](repeating: 2, count: 3000), [3]]
        let stream = frames.flatMap(FrameDecoder.frame)
        var decoder = FrameDecoder(limit: 4096)
        var out: [[UInt8]] = []
        var index = 0
        var rng = SplitMix64(seed: 3)
        while index < stream.count {
            let n = min(stream.count - index, Int.random(in: 1...700, using: &rng))
            decoder.append(stream[index..<(index + n)])
            index += n
            while let frame = try decoder.next() { out.append(frame) }
        }
        XCTAssertEqual(out, frames)
    }

    func testRefuseTextIsCappedAndKeepsValidUTF8() throws {
        let long = String(repeating: "é", count: 600)
        let decoded = try Refuse.decode(Refuse(code: .unknownPSKId, text: long).encode())
        XCTAssertEqual(decoded.code, .unknownPSKId)
        XCTAssertLessThanOrEqual(decoded.text.utf8.count, Refuse.maxTextBytes)
        XCTAssertTrue(decoded.text.allSatisfy { $0 == "é" })
        XCTAssertEqual(try Refuse.decode([200]).code, .unknown)
    }

    func testPeerNameParsing() {
        XCTAssertEqual(PeerName("02:AB:cd:00:01:ff")?.description, "02:ab:cd:00:01:ff")
        XCTAssertNil(PeerName("02:ab:cd:00:01"))
        XCTAssertNil(PeerName("02:ab:cd:00:01:fff"))
        XCTAssertNil(PeerName("zz:ab:cd:00:01:ff"))
        var rng = SplitMix64(seed: 1)
        let name = PeerName.random(using: &rng)
        XCTAssertEqual(name.bytes[0] & 0x03, 0x02, "locally administered, not multicast")
        XCTAssertEqual(PeerName(name.description), name)
    }
}
