import WeftTestSupport
import XCTest
@testable import WeftWire

final class OffloadTests: XCTestCase {
    func testFragmentHeaderRoundTripAndValidation() {
        let v = VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 66, gsoSize: 1368, checksumStart: 34, checksumOffset: 16)
        let h = FragmentHeader(source: 7, destination: 9, frameId: 42, index: 2, count: 3, chunkSize: 1000, totalLength: 2500, virtio: v)
        var body = [UInt8](repeating: 0xEE, count: FragmentHeader.size + 500)
        body.withUnsafeMutableBytes { h.store($0.baseAddress!) }
        XCTAssertEqual(body.withUnsafeBytes { FragmentHeader.load($0.baseAddress!, bodyLength: body.count) }, h)
        // The last piece must hold exactly the rest; any other piece exactly the chunk size.
        XCTAssertNil(body.withUnsafeBytes { FragmentHeader.load($0.baseAddress!, bodyLength: body.count - 1) })
        var middle = h
        middle.index = 1
        var bytes = [UInt8](repeating: 0, count: FragmentHeader.size + 1000)
        bytes.withUnsafeMutableBytes { middle.store($0.baseAddress!) }
        XCTAssertEqual(bytes.withUnsafeBytes { FragmentHeader.load($0.baseAddress!, bodyLength: bytes.count) }, middle)
        for forged in [(index: 3, count: 3), (index: 0, count: 0), (index: 0, count: 200)] {
            var f = h
            f.index = UInt16(forged.index)
            f.count = UInt16(forged.count)
            var b = [UInt8](repeating: 0, count: FragmentHeader.size + 500)
            b.withUnsafeMutableBytes { f.store($0.baseAddress!) }
            XCTAssertNil(b.withUnsafeBytes { FragmentHeader.load($0.baseAddress!, bodyLength: b.count) }, "\(forged)")
        }
    }

    func testVirtioHeaderByteOrders() {
        let v = VirtioNetHeader(flags: 1, gsoType: 4, headerLength: 0x0102, gsoSize: 0x0304, checksumStart: 0x0506, checksumOffset: 0x0708)
        var native = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        var wire = native
        native.withUnsafeMutableBytes { v.storeNative($0.baseAddress!) }
        wire.withUnsafeMutableBytes { v.storeWire($0.baseAddress!) }
        XCTAssertEqual(native, [1, 4, 0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0x08, 0x07], "the TAP's layout is little-endian")
        XCTAssertEqual(wire, [1, 4, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])
        XCTAssertEqual(native.withUnsafeBytes { VirtioNetHeader.loadNative($0.baseAddress!) }, v)
        XCTAssertEqual(wire.withUnsafeBytes { VirtioNetHeader.loadWire($0.baseAddress!) }, v)
        XCTAssertTrue(v.isSuperFrame)
        XCTAssertFalse(VirtioNetHeader(gsoType: 0x80).isSuperFrame, "the ECN bit alone is not a GSO type")
    }

    func testRandomBodiesNeverCrashTheFragmentDecoder() {
        var rng = SplitMix64(seed: 5)
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0..<80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = bytes.withUnsafeBytes { FragmentHeader.load($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, bodyLength: bytes.count) }
        }
    }

    /// Finishing a partial checksum gives what a full computation gives.
    func testCompletingAPartialChecksumMatchesTheFullOne() {
        var rng = SplitMix64(seed: 11)
        for length in [14 + 20 + 20, 14 + 20 + 21, 14 + 20 + 1400, 14 + 20 + 1401] {
            var frame = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let start = 34
            let offset = 16
            // The kernel leaves the pseudo-header sum in the field; any value works for the check.
            let pseudo: UInt16 = 0x1234
            frame[start + offset] = UInt8(pseudo >> 8)
            frame[start + offset + 1] = UInt8(pseudo & 0xFF)
            var expected = frame
            expected[start + offset] = 0
            expected[start + offset + 1] = 0
            let full = expected.withUnsafeBytes { ICMPTooBig.checksum($0.baseAddress! + start, length - start, initial: UInt32(pseudo)) }
            XCTAssertTrue(frame.withUnsafeMutableBytes { InternetChecksum.complete(frame: $0.baseAddress!, length: length, start: start, offset: offset) })
            XCTAssertEqual(UInt16(frame[start + offset]) << 8 | UInt16(frame[start + offset + 1]), full, "length \(length)")
        }
        var short = [UInt8](repeating: 0, count: 40)
        XCTAssertFalse(short.withUnsafeMutableBytes { InternetChecksum.complete(frame: $0.baseAddress!, length: 40, start: 34, offset: 16) })
    }
}
