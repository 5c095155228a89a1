import XCTest
@testable import WeftWire

final class ICMPTooBigTests: XCTestCase {
    let srcMAC: [UInt8] = [0x02, 1, 1, 1, 1, 1]
    let dstMAC: [UInt8] = [0x02, 2, 2, 2, 2, 2]

    func ipv4Frame(df: Bool, size: Int = 1400) -> [UInt8] {
        var f = dstMAC + srcMAC + [0x08, 0x00]
        var ip: [UInt8] = [0x45, 0, UInt8(size >> 8), UInt8(size & 0xFF), 0x12, 0x34, df ? 0x40 : 0, 0, 64, 6, 0, 0,
                           10, 47, 0, 1, 10, 47, 0, 2]
        ip += [UInt8](repeating: 0xAB, count: size - 20)
        f += ip
        return f
    }

    private func build(_ frame: [UInt8], mtu: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ICMPTooBig.maxReply)
        let n = frame.withUnsafeBytes { f in out.withUnsafeMutableBytes { ICMPTooBig.build(frame: f.baseAddress!, length: frame.count, mtu: mtu, into: $0.baseAddress!) } }
        return Array(out[..<n])
    }

    private func verifies(_ bytes: ArraySlice<UInt8>, initial: UInt32 = 0) -> Bool {
        Array(bytes).withUnsafeBytes { ICMPTooBig.checksum($0.baseAddress!, bytes.count, initial: initial) } == 0
    }

    func testIPv4FragmentationNeeded() {
        let reply = build(ipv4Frame(df: true), mtu: 1320)
        XCTAssertEqual(reply.count, 14 + 20 + 8 + 28)
        XCTAssertEqual(Array(reply[0..<6]), srcMAC, "back to the sender")
        XCTAssertEqual(Array(reply[6..<12]), dstMAC)
        XCTAssertEqual(Array(reply[14 + 12..<14 + 16]), [10, 47, 0, 2], "from the original destination")
        XCTAssertEqual(Array(reply[14 + 16..<14 + 20]), [10, 47, 0, 1])
        XCTAssertTrue(verifies(reply[14..<34]), "IP header checksum")
        XCTAssertEqual(reply[34], 3)
        XCTAssertEqual(reply[35], 4)
        XCTAssertEqual(Int(reply[40]) << 8 | Int(reply[41]), 1320)
        XCTAssertTrue(verifies(reply[34...]), "ICMP checksum")
        XCTAssertEqual(Array(reply[42..<62]), Array(ipv4Frame(df: true)[14..<34]), "quotes the original header")
    }

    func testNoErrorWithoutDFOrForOtherProtocols() {
        XCTAssertEqual(build(ipv4Frame(df: false), mtu: 1320).count, 0)
        var arp = ipv4Frame(df: true)
        arp[12] = 0x08; arp[13] = 0x06
        XCTAssertEqual(build(arp, mtu: 1320).count, 0)
        XCTAssertEqual(build(Array(ipv4Frame(df: true)[..<20]), mtu: 1320).count, 0, "truncated")
    }

    func testIPv6PacketTooBig() {
        var frame = dstMAC + srcMAC + [0x86, 0xDD]
        let src: [UInt8] = [0xfd] + [UInt8](repeating: 0, count: 14) + [1]
        let dst: [UInt8] = [0xfd] + [UInt8](repeating: 0, count: 14) + [2]
        frame += [0x60, 0, 0, 0, 0x05, 0x8c, 6, 64] + src + dst + [UInt8](repeating: 0xCD, count: 1420)
        let reply = build(frame, mtu: 1320)
        XCTAssertEqual(reply.count, 14 + 1280)
        XCTAssertEqual(Array(reply[14 + 8..<14 + 24]), dst)
        XCTAssertEqual(Array(reply[14 + 24..<14 + 40]), src)
        XCTAssertEqual(reply[54], 2)
        XCTAssertEqual(Int(reply[58]) << 24 | Int(reply[59]) << 16 | Int(reply[60]) << 8 | Int(reply[61]), 1320)
        let payload = reply.count - 54
        var pseudo: UInt32 = 0
        for i in stride(from: 22, to: 54, by: 2) { pseudo += UInt32(reply[i]) << 8 | UInt32(reply[i + 1]) }
        pseudo += UInt32(payload) + 58
        XCTAssertTrue(verifies(reply[54...], initial: pseudo), "ICMPv6 checksum with the pseudo-header")
    }
}
