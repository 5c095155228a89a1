import XCTest
@testable import WeftWire

final class IPv4FragmentsTests: XCTestCase {
    /// An Ethernet frame with an IPv4 packet of `size` bytes whose payload counts up.
    func frame(size: Int, flags: UInt16 = 0, options: Bool = false) -> [UInt8] {
        var f: [UInt8] = [2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 0x08, 0x00]
        f += [options ? 0x46 : 0x45, 0, UInt8(size >> 8), UInt8(size & 0xFF), 0x12, 0x34, UInt8(flags >> 8), UInt8(flags & 0xFF),
              64, 17, 0, 0, 10, 47, 0, 3, 10, 47, 0, 1]
        f += (0..<(size - 20)).map { UInt8(truncatingIfNeeded: $0) }
        return f
    }

    func fragments(_ f: [UInt8], mtu: Int) -> [[UInt8]] {
        f.withUnsafeBytes { src in
            (0..<IPv4Fragments.count(frame: src.baseAddress!, length: f.count, mtu: mtu)).map { index in
                var out = [UInt8](repeating: 0, count: f.count)
                let n = out.withUnsafeMutableBytes { IPv4Fragments.write(frame: src.baseAddress!, length: f.count, mtu: mtu, index: index, into: $0.baseAddress!) }
                return Array(out[..<n])
            }
        }
    }

    func field(_ f: [UInt8], _ offset: Int) -> Int { Int(f[14 + offset]) << 8 | Int(f[14 + offset + 1]) }

    func testA1420PacketBecomesTwoThatFit1320AndReassemble() {
        let original = frame(size: 1420)
        let pieces = fragments(original, mtu: 1320)
        XCTAssertEqual(pieces.count, 2)
        XCTAssertEqual(pieces.map { field($0, 2) }, [1316, 20 + 1400 - 1296], "payload cut at a multiple of 8")
        XCTAssertEqual(pieces.map { field($0, 6) }, [0x2000, 1296 / 8], "MF on the first, offset on the second")
        for p in pieces {
            XCTAssertLessThanOrEqual(p.count - 14, 1320)
            XCTAssertEqual(Array(p[0..<14]), Array(original[0..<14]))
            XCTAssertEqual(p.withUnsafeBytes { ICMPTooBig.checksum($0.baseAddress! + 14, 20, initial: 0) }, 0, "header checksum")
        }
        XCTAssertEqual(pieces.flatMap { $0[34...] }, Array(original[34...]), "the payload, in order")
    }

    func testAFragmentKeepsItsOffsetAndItsMoreFragmentsFlag() {
        // The middle piece of something bigger: offset 100 (800 bytes), MF set.
        let pieces = fragments(frame(size: 1420, flags: 0x2000 | 100), mtu: 1000)
        XCTAssertEqual(pieces.map { field($0, 6) & 0x1FFF }, [100, 100 + 976 / 8])
        XCTAssertEqual(pieces.map { field($0, 6) & 0x2000 }, [0x2000, 0x2000])
    }

    func testDFOptionsOtherProtocolsAndShortFramesAreNotCut() {
        for (f, why) in [(frame(size: 1420, flags: 0x4000), "DF"), (frame(size: 1420, options: true), "options"),
                         (Array(frame(size: 1420)[..<100]), "total length beyond the frame")] {
            XCTAssertEqual(fragments(f, mtu: 1320).count, 0, why)
        }
        var arp = frame(size: 100)
        arp[13] = 0x06
        XCTAssertEqual(fragments(arp, mtu: 1320).count, 0)
        XCTAssertEqual(fragments(frame(size: 1420), mtu: 60).count, 0, "an MTU under 68")
    }

    func testEthernetPaddingIsNotCopied() {
        var f = frame(size: 40)
        f += [0, 0, 0, 0]
        XCTAssertEqual(fragments(f, mtu: 68).map { field($0, 2) }, [20 + 20])
    }
}
