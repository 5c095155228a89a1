import WeftTestSupport
import XCTest
@testable import WeftWire

final class TopologyCodecTests: XCTestCase {
    /// Any 32 bytes: the codec does not judge keys (the router does, docs/protocol.md §4).
    private let key = [UInt8](0..<32)

    private func randomString<G: RandomNumberGenerator>(maxBytes: Int, using g: inout G) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-.:[] éß→🕸")
        var s = ""
        while true {
            let c = alphabet.randomElement(using: &g)!
            if s.utf8.count + String(c).utf8.count > maxBytes || Int.random(in: 0..<12, using: &g) == 0 { return s }
            s.append(c)
        }
    }

    private func randomUpdate<G: RandomNumberGenerator>(using g: inout G) -> TopologyUpdate {
        let names = (0..<Int.random(in: 1...12, using: &g)).map { _ in PeerName.random(using: &g) }
        let peers = (0..<Int.random(in: 0...10, using: &g)).map { _ in
            PeerEntry(
                name: names.randomElement(using: &g)!,
                nickname: randomString(maxBytes: 64, using: &g),
                uid: g.next(), version: g.next(),
                shortId: UInt16.random(in: 0...4095, using: &g),
                connections: (0..<Int.random(in: 0...6, using: &g)).map { _ in
                    ConnectionEntry(remote: names.randomElement(using: &g)!,
                                    address: randomString(maxBytes: 255, using: &g),
                                    established: Bool.random(using: &g), outbound: Bool.random(using: &g),
                                    mtu: Bool.random(using: &g) ? Int.random(in: 68...0xFFFF, using: &g) : nil,
                                    dataPlane: Bool.random(using: &g) ? DataPlaneReport(mode: DataPlaneReport.Mode.allCases.randomElement(using: &g)!,
                                                                                       encrypted: Bool.random(using: &g)) : nil,
                                    dataPlaneDown: Bool.random(using: &g))
                },
                identity: (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) })
        }
        return TopologyUpdate(peers: peers)
    }

    func testRoundTripOfRandomTopologies() throws {
        var g = SplitMix64(seed: 1)
        for _ in 0..<500 {
            let update = randomUpdate(using: &g)
            XCTAssertEqual(try TopologyUpdate.decode(update.encode()), update)
        }
    }

    func testEmptyUpdateIsTwoZeroBytes() throws {
        XCTAssertEqual(TopologyUpdate(peers: []).encode(), [0, 0])
        XCTAssertEqual(try TopologyUpdate.decode([0, 0]), TopologyUpdate(peers: []))
    }

    func testKnownEncoding() throws {
        let a = PeerName("02:00:00:00:00:0a")!, b = PeerName("02:00:00:00:00:0b")!
        let update = TopologyUpdate(peers: [PeerEntry(name: a, nickname: "h", uid: 1, version: 2, shortId: 0x123, connections: [
            ConnectionEntry(remote: b, address: "x:1", established: true, outbound: true),
        ], identity: key)])
        // The identity key follows the name (docs/protocol.md §4).
        let expected: [UInt8] = [0, 1, 2, 0, 0, 0, 0, 0x0a] + key + [1, 0x68, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0x01, 0x23,
                                 0, 1, 2, 0, 0, 0, 0, 0x0b, 3, 0x78, 0x3a, 0x31, 0x03]
        XCTAssertEqual(update.encode(), expected)
        XCTAssertEqual(try TopologyUpdate.decode(expected), update)
    }

    /// An entry's smallest encoding is 59 bytes (name 6, key 32, nickname length 1, uid 8,
    /// version 8, short id 2, connection count 2): a key cut short or missing is a truncation,
    /// and a count of entries that 59 bytes each cannot fit is refused before anything is reserved.
    func testIdentityKeyIsPartOfTheEntry() throws {
        let one = TopologyUpdate(peers: [PeerEntry(name: PeerName(value: 1), nickname: "", uid: 1, version: 1, shortId: 1, connections: [],
                                                   identity: key)]).encode()
        XCTAssertEqual(one.count, 2 + 59)
        XCTAssertEqual(try TopologyUpdate.decode(one).peers[0].identity, key)
        // Without the key (the version-1 layout): 32 bytes short.
        var v1 = Array(one[..<8]) + Array(one[40...])
        XCTAssertThrowsError(try TopologyUpdate.decode(v1)) { error in
            guard case .truncated? = error as? WireError else { return XCTFail("\(error)") }
        }
        // Oversized: a key with bytes to spare leaves bytes after the last entry.
        v1 = Array(one[..<40]) + [0xAA] + Array(one[40...])
        XCTAssertThrowsError(try TopologyUpdate.decode(v1))
        // Two entries claimed, one present: the count is refused as larger than the bytes hold.
        var two = one
        two[1] = 2
        XCTAssertThrowsError(try TopologyUpdate.decode(two)) { error in
            guard case .truncated? = error as? WireError else { return XCTFail("\(error)") }
        }
        // A key of another length is written as the zero key, never as a field of another size.
        let short = TopologyUpdate(peers: [PeerEntry(name: PeerName(value: 1), nickname: "", uid: 1, version: 1, shortId: 1, connections: [],
                                                     identity: [1, 2, 3])]).encode()
        XCTAssertEqual(short.count, 2 + 59)
        XCTAssertEqual(try TopologyUpdate.decode(short).peers[0].identity, PeerEntry.noIdentity)
    }

    func testConnectionMTUFollowsTheFlags() throws {
        let a = PeerName("02:00:00:00:00:0a")!, b = PeerName("02:00:00:00:00:0b")!
        let update = TopologyUpdate(peers: [PeerEntry(name: a, nickname: "h", uid: 1, version: 2, shortId: 0x123, connections: [
            ConnectionEntry(remote: b, address: "x:1", established: true, outbound: false, mtu: 1320),
        ])])
        let bytes = update.encode()
        // flags: established | mtu follows; then 1320 = 0x0528.
        XCTAssertEqual(Array(bytes.suffix(3)), [0x05, 0x05, 0x28])
        XCTAssertEqual(try TopologyUpdate.decode(bytes), update)
        // Below IPv4's minimum MTU: the update is rejected.
        var low = bytes
        low[low.count - 2] = 0
        low[low.count - 1] = 67
        XCTAssertThrowsError(try TopologyUpdate.decode(low))
        // An MTU the field cannot carry is left out, not wrapped.
        var out = update
        out.peers[0].connections[0].mtu = 70_000
        XCTAssertNil(try TopologyUpdate.decode(out.encode()).peers[0].connections[0].mtu)
    }

    func testDataPlaneDownIsFlagBit6() throws {
        let a = PeerName("02:00:00:00:00:0a")!, b = PeerName("02:00:00:00:00:0b")!
        let update = TopologyUpdate(peers: [PeerEntry(name: a, nickname: "h", uid: 1, version: 2, shortId: 0x123, connections: [
            ConnectionEntry(remote: b, address: "x:1", established: true, outbound: true, dataPlaneDown: true),
        ])])
        let bytes = update.encode()
        XCTAssertEqual(bytes.last, 0x43)  // established | outbound | data plane down
        XCTAssertEqual(try TopologyUpdate.decode(bytes), update)
        // A router that predates the bit sends 0x03: the data plane counts as up.
        var old = bytes
        old[old.count - 1] = 0x03
        XCTAssertFalse(try TopologyUpdate.decode(old).peers[0].connections[0].dataPlaneDown)
    }

    func testEveryTruncationThrows() {
        var g = SplitMix64(seed: 2)
        for _ in 0..<50 {
            let bytes = randomUpdate(using: &g).encode()
            for length in 0..<bytes.count {
                XCTAssertThrowsError(try TopologyUpdate.decode(Array(bytes[..<length])), "prefix of \(length)/\(bytes.count) bytes")
            }
        }
    }

    func testTrailingBytesThrow() {
        var bytes = TopologyUpdate(peers: []).encode()
        bytes.append(0)
        XCTAssertThrowsError(try TopologyUpdate.decode(bytes))
    }

    func testRandomBytesNeverCrash() {
        var g = SplitMix64(seed: 3)
        for i in 0..<10_000 {
            var bytes = (0..<Int.random(in: 0...200, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            // Make small counts common, so that the entry decoders are exercised, not only the count check.
            if i % 2 == 0, bytes.count >= 2 { bytes[0] = 0; bytes[1] = UInt8.random(in: 0...3, using: &g) }
            _ = try? TopologyUpdate.decode(bytes)
        }
    }

    func testMutatedValidEncodingsNeverCrash() {
        var g = SplitMix64(seed: 4)
        for _ in 0..<2_000 {
            var bytes = randomUpdate(using: &g).encode()
            guard !bytes.isEmpty else { continue }
            for _ in 0..<Int.random(in: 1...4, using: &g) {
                bytes[Int.random(in: 0..<bytes.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
            }
            _ = try? TopologyUpdate.decode(bytes)
        }
    }

    func testForgedHugePeerCountThrowsTooLarge() {
        let bytes: [UInt8] = [0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertThrowsError(try TopologyUpdate.decode(bytes)) { error in
            guard case .tooLarge(_, let count, let limit)? = error as? WireError else { return XCTFail("\(error)") }
            XCTAssertEqual(count, 0xFFFF)
            XCTAssertEqual(limit, 4096)
        }
    }

    func testForgedCountWithinCapButLargerThanMessageThrowsTruncated() {
        // 4000 peers cannot fit in 8 bytes: rejected before any array is reserved.
        let bytes: [UInt8] = [0x0F, 0xA0, 0, 0, 0, 0, 0, 0, 0, 0]
        XCTAssertThrowsError(try TopologyUpdate.decode(bytes)) { error in
            guard case .truncated? = error as? WireError else { return XCTFail("\(error)") }
        }
    }

    func testForgedHugeConnectionCountThrows() {
        var w = ByteWriter()
        w.u16(1)
        w.peerName(PeerName(value: 1)); w.append(key); w.str8("n"); w.u64(1); w.u64(1); w.u16(1)
        w.u16(0xFFFF)
        XCTAssertThrowsError(try TopologyUpdate.decode(w.bytes)) { error in
            guard case .tooLarge? = error as? WireError else { return XCTFail("\(error)") }
        }
    }

    private func singlePeer(nicknameBytes: [UInt8], shortId: UInt16 = 1) -> [UInt8] {
        var w = ByteWriter()
        w.u16(1)
        w.peerName(PeerName(value: 1))
        w.append(key)
        w.u8(UInt8(nicknameBytes.count)); w.append(nicknameBytes)
        w.u64(1); w.u64(1); w.u16(shortId); w.u16(0)
        return w.bytes
    }

    func testInvalidUTF8NicknameThrows() {
        XCTAssertNoThrow(try TopologyUpdate.decode(singlePeer(nicknameBytes: Array("ok".utf8))))
        XCTAssertThrowsError(try TopologyUpdate.decode(singlePeer(nicknameBytes: [0x61, 0xFF, 0x62]))) { error in
            guard case .invalid? = error as? WireError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try TopologyUpdate.decode(singlePeer(nicknameBytes: [0xC3])))  // cut sequence
    }

    func testOverlongNicknameThrows() {
        XCTAssertNoThrow(try TopologyUpdate.decode(singlePeer(nicknameBytes: Array(repeating: 0x61, count: 64))))
        XCTAssertThrowsError(try TopologyUpdate.decode(singlePeer(nicknameBytes: Array(repeating: 0x61, count: 65))))
    }

    func testShortIdOver4095Throws() {
        XCTAssertNoThrow(try TopologyUpdate.decode(singlePeer(nicknameBytes: [], shortId: 4095)))
        XCTAssertThrowsError(try TopologyUpdate.decode(singlePeer(nicknameBytes: [], shortId: 4096)))
    }

    func testEncoderCutsLongStringsSoTheResultDecodes() throws {
        let long = String(repeating: "é", count: 200)  // 400 bytes
        let update = TopologyUpdate(peers: [PeerEntry(name: PeerName(value: 5), nickname: long, uid: 0, version: 0, shortId: 0, connections: [
            ConnectionEntry(remote: PeerName(value: 6), address: long, established: false, outbound: true),
        ])])
        let decoded = try TopologyUpdate.decode(update.encode())
        XCTAssertEqual(decoded.peers[0].nickname, String(repeating: "é", count: 32))
        XCTAssertEqual(decoded.peers[0].connections[0].address, String(repeating: "é", count: 127))
    }

    /// Bits 3–4 the mode (1 none, 2 sleeve, 3 fastdp), bit 5 encrypted; no report leaves them 0.
    func testDataPlaneReportInFlagBits() throws {
        let a = PeerName("02:00:00:00:00:0a")!, b = PeerName("02:00:00:00:00:0b")!
        let expected: [(DataPlaneReport?, UInt8)] = [
            (nil, 0x01), (DataPlaneReport(mode: .noDataPlane, encrypted: false), 0x09), (DataPlaneReport(mode: .sleeve, encrypted: true), 0x31),
            (DataPlaneReport(mode: .sleeve, encrypted: false), 0x11), (DataPlaneReport(mode: .fastdp, encrypted: false), 0x19),
        ]
        for (report, flags) in expected {
            let update = TopologyUpdate(peers: [PeerEntry(name: a, nickname: "h", uid: 1, version: 2, shortId: 1, connections: [
                ConnectionEntry(remote: b, address: "x:1", established: true, outbound: false, dataPlane: report),
            ])])
            let bytes = update.encode()
            XCTAssertEqual(bytes.last, flags, "\(String(describing: report))")
            XCTAssertEqual(try TopologyUpdate.decode(bytes), update)
        }
    }

    /// Bits 6 and 7 (data plane down, and unassigned) leave the report alone; bit 5 without a
    /// mode is no report.
    func testUnknownFlagBitsBesideTheDataPlaneReportAreIgnored() throws {
        func decoded(_ flags: UInt8) throws -> ConnectionEntry {
            var w = ByteWriter()
            w.u16(1)
            w.peerName(PeerName(value: 1)); w.append(key); w.str8(""); w.u64(1); w.u64(1); w.u16(1)
            w.u16(1); w.peerName(PeerName(value: 2)); w.str8("a:1"); w.u8(flags)
            return try TopologyUpdate.decode(w.bytes).peers[0].connections[0]
        }
        XCTAssertEqual(try decoded(0xC0 | 0x31).dataPlane, DataPlaneReport(mode: .sleeve, encrypted: true))
        XCTAssertEqual(try decoded(0xC0 | 0x19).dataPlane, DataPlaneReport(mode: .fastdp, encrypted: false))
        XCTAssertNil(try decoded(0xC0 | 0x21).dataPlane)
        XCTAssertTrue(try decoded(0xC0 | 0x21).established)
    }

    func testUnknownConnectionFlagBitsAreIgnored() throws {
        var w = ByteWriter()
        w.u16(1)
        w.peerName(PeerName(value: 1)); w.append(key); w.str8(""); w.u64(1); w.u64(1); w.u16(1)
        w.u16(1); w.peerName(PeerName(value: 2)); w.str8("a:1"); w.u8(0xF9)  // all but outbound and mtu: a fastdp, encrypted report, data plane down and bit 7
        let c = try TopologyUpdate.decode(w.bytes).peers[0].connections[0]
        XCTAssertTrue(c.established)
        XCTAssertFalse(c.outbound)
    }
}
