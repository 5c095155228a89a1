// Fuzz targets of the data plane's in-place parsers and builders: sleeve header and frame
// records (WeftWire/Sleeve.swift), the virtio-net header and checksum finishing, ICMP too-big
// and IPv4 fragments built from arbitrary frames, and FRAGMENT reassembly
// (WeftDatapath/SleeveEngine+Reassembly.swift). Every buffer is exactly as long as its
// length says, so AddressSanitizer catches any access past it.
@testable import WeftDatapath
@testable import WeftWire

/// An exact-size mutable copy of `bytes` for `body`.
func withCopy<R>(_ bytes: [UInt8], _ body: (UnsafeMutableRawPointer, Int) -> R) -> R {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
    defer { p.deallocate() }
    bytes.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) } }
    return body(p, bytes.count)
}

func u16(_ p: UnsafeRawPointer, _ offset: Int) -> Int { Int(p.load(fromByteOffset: offset, as: UInt8.self)) << 8 | Int(p.load(fromByteOffset: offset + 1, as: UInt8.self)) }

let ethernetIPv4: [UInt8] = [2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 0x08, 0x00]

func ipv4Frame(size: Int, flags: UInt16, protocol ipProtocol: UInt8 = 6) -> [UInt8] {
    ethernetIPv4 + [0x45, 0, UInt8(size >> 8), UInt8(size & 0xFF), 0x12, 0x34, UInt8(flags >> 8), UInt8(flags & 0xFF),
                    64, ipProtocol, 0, 0, 10, 47, 0, 3, 10, 47, 0, 1] + (0..<(size - 20)).map { UInt8(truncatingIfNeeded: $0) }
}

func ipv6Frame(payload: Int) -> [UInt8] {
    [2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 0x86, 0xDD, 0x60, 0, 0, 0, UInt8(payload >> 8), UInt8(payload & 0xFF), 6, 64]
        + [UInt8](repeating: 0xFD, count: 32) + [UInt8](repeating: 0x5A, count: payload)
}

func sleevePacket(_ kind: SleeveKind, body: [UInt8]) -> [UInt8] {
    var packet = [UInt8](repeating: 0, count: Sleeve.headerSize)
    packet.withUnsafeMutableBytes {
        Sleeve.writeHeader(Sleeve.Header(kind: kind, sealed: false, epoch: 1, sender: 1, receiver: 2, counter: 42), to: $0.baseAddress!)
    }
    return packet + body
}

func frameRecord(_ frame: [UInt8], source: UInt16, destination: UInt16) -> [UInt8] {
    var header = [UInt8](repeating: 0, count: Sleeve.frameHeaderSize)
    header.withUnsafeMutableBytes { Sleeve.writeFrameHeader(length: frame.count, source: source, destination: destination, to: $0.baseAddress!) }
    return header + frame
}

/// The pieces a sender cuts `frame` into (protocol.md §5.5), each a FRAGMENT body.
func fragmentPieces(_ frame: [UInt8], chunkSize: Int, frameId: UInt32, virtio: VirtioNetHeader) -> [[UInt8]] {
    let count = (frame.count + chunkSize - 1) / chunkSize
    return (0..<count).map { index in
        let start = index * chunkSize
        let chunk = Array(frame[start..<min(frame.count, start + chunkSize)])
        var header = [UInt8](repeating: 0, count: FragmentHeader.size)
        header.withUnsafeMutableBytes {
            FragmentHeader(source: 1, destination: 2, frameId: frameId, index: UInt16(index), count: UInt16(count),
                           chunkSize: UInt16(chunkSize), totalLength: UInt32(frame.count), virtio: virtio).store($0.baseAddress!)
        }
        return header + chunk
    }
}

let tsoVirtio = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: 1, headerLength: 54, gsoSize: 1448, checksumStart: 34, checksumOffset: 16)

/// One reassembly for every run (it holds 512 KiB; a new one per input would cost more than the
/// input): each run starts with every slot free but the bytes of earlier runs still in the
/// buffer, as on the UDP thread.
nonisolated(unsafe) var reassembly = SleeveEngine.Reassembly()
/// What the fragment target reads of a reassembly slot.
struct SlotState {
    var inUse: Bool, source: UInt16, frameId: UInt32, received: Int

    init(slot: Int) {
        inUse = reassembly.inUse[slot]
        source = reassembly.source[slot]
        frameId = reassembly.frameId[slot]
        received = reassembly.received[slot]
    }

    func holds(_ piece: FragmentHeader) -> Bool { inUse && source == piece.source && frameId == piece.frameId }
}

/// Per slot and byte, the generation of the super-frame whose piece last wrote it; a slot's
/// generation goes up whenever a new super-frame takes it.
nonisolated(unsafe) var writtenBy = [[UInt32]](repeating: [UInt32](repeating: 0, count: 65536), count: SleeveEngine.Reassembly.slots)
nonisolated(unsafe) var generation = [UInt32](repeating: 0, count: SleeveEngine.Reassembly.slots)

let datapathTargets: [FuzzTarget] = [
    // A sleeve packet in clear: its header, then the frame records or the FRAGMENT piece of its body.
    FuzzTarget(name: "sleeve", run: { data in
        withCopy(Array(data)) { p, length in
            guard let header = Sleeve.readHeader(p, length: length) else { return }
            let body = p + Sleeve.headerSize
            let bodyLength = length - Sleeve.headerSize
            switch header.kind {
            case .fragment:
                guard let piece = FragmentHeader.load(body, bodyLength: bodyLength) else { return }
                expect(piece.offset + bodyLength - FragmentHeader.size <= Int(piece.totalLength) && piece.totalLength <= 65535,
                       "a FRAGMENT piece outside its super-frame")
            default:
                _ = Sleeve.forEachFrame(in: body, length: bodyLength) { record in
                    expect(record.offset >= Sleeve.frameHeaderSize && record.length >= Overhead.ethernetHeader
                           && record.offset + record.length <= bodyLength, "a frame record outside its body")
                }
            }
        }
    }, seeds: { [sleevePacket(.data, body: frameRecord(ipv4Frame(size: 84, flags: 0x4000), source: 1, destination: 2)
                                       + frameRecord(ipv4Frame(size: 40, flags: 0), source: 1, destination: Sleeve.broadcastShortId)),
                 sleevePacket(.fragment, body: fragmentPieces(ipv4Frame(size: 3000, flags: 0x4000), chunkSize: 1400, frameId: 9, virtio: tsoVirtio)[1]),
                 sleevePacket(.heartbeat, body: [UInt8](repeating: 0, count: 8))] }),

    // What the TAP hands the router with a frame: the virtio-net header, the segment length the
    // path-MTU check reads from it, and the partial checksum finished in userspace.
    FuzzTarget(name: "virtio", run: { data in
        guard data.count >= VirtioNetHeader.size, let base = data.baseAddress else { return }
        let header = VirtioNetHeader.loadNative(base)
        _ = VirtioNetHeader.loadWire(base)
        withCopy(Array(data[VirtioNetHeader.size...])) { frame, length in
            _ = header.segmentIPLength(frame: frame, length: length)
            let start = Int(header.checksumStart), offset = Int(header.checksumOffset)
            let field = start + offset
            let pseudo = field + 2 <= length && start >= 14 ? UInt64(u16(frame, field)) : 0
            guard InternetChecksum.complete(frame: frame, length: length, start: start, offset: offset), offset % 2 == 0 else { return }
            expect(InternetChecksum.fold(pseudo + InternetChecksum.sum(frame + start, length - start)) == 0xFFFF,
                   "a finished checksum does not verify")
        }
    }, seeds: {
        var tso = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        tso.withUnsafeMutableBytes { tsoVirtio.storeNative($0.baseAddress!) }
        return [tso + ipv4Frame(size: 1500, flags: 0x4000), [UInt8](repeating: 0, count: VirtioNetHeader.size) + ipv4Frame(size: 60, flags: 0, protocol: 17)]
    }),

    // A frame too big for the path: the ICMP error built for it (which must verify and fit),
    // and the IPv4 fragments cut from it (each within the MTU, offsets within 13 bits).
    FuzzTarget(name: "icmp-too-big", run: { data in
        var input = FuzzInput(data)
        let mtu = Int(input.u16())
        let frameBytes = input.rest()
        withCopy(frameBytes) { frame, length in
            let out = UnsafeMutableRawPointer.allocate(byteCount: ICMPTooBig.maxReply, alignment: 16)
            defer { out.deallocate() }
            let n = ICMPTooBig.build(frame: frame, length: length, mtu: mtu, into: out)
            expect(n >= 0 && n <= ICMPTooBig.maxReply, "an ICMP reply of \(n) bytes")
            if n > 0 {
                let ip = UnsafeRawPointer(out + 14)
                if ICMPTooBig.etherType(out) == 0x0800 {
                    expect(ICMPTooBig.checksum(ip, 20, initial: 0) == 0, "the ICMP reply's IPv4 header checksum does not verify")
                    expect(ICMPTooBig.checksum(ip + 20, n - 34, initial: 0) == 0, "the ICMPv4 checksum does not verify")
                } else {
                    let pseudo = ICMPTooBig.partialSum(ip + 8, 32) + UInt32(n - 54) + 58
                    expect(ICMPTooBig.checksum(ip + 40, n - 54, initial: pseudo) == 0, "the ICMPv6 checksum does not verify")
                }
            }
            let pieces = IPv4Fragments.count(frame: frame, length: length, mtu: mtu)
            guard pieces > 0 else { return }
            let fragment = UnsafeMutableRawPointer.allocate(byteCount: 14 + mtu, alignment: 16)
            defer { fragment.deallocate() }
            for index in 0..<pieces {
                let size = IPv4Fragments.write(frame: frame, length: length, mtu: mtu, index: index, into: fragment)
                expect(size <= 14 + mtu && size == 14 + u16(fragment + 14, 2), "fragment \(index) of \(size) bytes for MTU \(mtu)")
                let fragmentOffset = (u16(fragment + 14, 6) & 0x1FFF) * 8
                let originalOffset = (u16(frame + 14, 6) & 0x1FFF) * 8
                expect(fragmentOffset == originalOffset + index * ((mtu - 20) & ~7), "fragment \(index) has a wrapped offset")
            }
        }
    }, seeds: { [[0x05, 0x28] + ipv4Frame(size: 1400, flags: 0x4000), [0x05, 0x00] + ipv4Frame(size: 1400, flags: 0),
                 [0x05, 0x00] + ipv4Frame(size: 1400, flags: 0x2000 | 100), [0x05, 0x00] + ipv6Frame(payload: 1400)] }),

    // FRAGMENT pieces in any order, repeated, overlapping, from several frames at once, with
    // lengths that lie: each u16 length then that many bytes of a FRAGMENT body. A super-frame
    // handed over as complete must consist only of bytes its own pieces wrote.
    FuzzTarget(name: "fragment", run: { data in
        for slot in 0..<SleeveEngine.Reassembly.slots { reassembly.inUse[slot] = false }
        var input = FuzzInput(data)
        while !input.isAtEnd {
            let body = input.take(Int(input.u16()))
            withCopy(body) { p, length in
                guard let piece = FragmentHeader.load(p, bodyLength: length) else { return }
                let chunk = length - FragmentHeader.size
                let slots = 0..<SleeveEngine.Reassembly.slots
                let before = slots.map { SlotState(slot: $0) }
                let done = reassembly.add(piece, chunk: p + FragmentHeader.size, length: chunk)
                // The slot the piece was copied to: the completed one, or the one now holding its
                // frame whose count of pieces went up.
                let target = done ?? slots.first { (slot: Int) -> Bool in
                    let now = SlotState(slot: slot)
                    return now.holds(piece) && (!before[slot].holds(piece) || before[slot].received != now.received)
                }
                guard let slot = target else { return }
                if !before[slot].holds(piece) { generation[slot] &+= 1 }
                let current = generation[slot]
                writtenBy[slot].withUnsafeMutableBufferPointer { stamps in
                    for i in piece.offset..<(piece.offset + chunk) { stamps[i] = current }
                    if done != nil {
                        let total = Int(piece.totalLength)
                        expect(!stamps[0..<total].contains { $0 != current }, "a super-frame of \(total) bytes handed over with bytes no piece of it wrote")
                    }
                }
            }
        }
    }, seeds: {
        let frame = ipv4Frame(size: 4000, flags: 0x4000)
        func framed(_ pieces: [[UInt8]]) -> [UInt8] { pieces.flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xFF)] + $0 } }
        let pieces = fragmentPieces(frame, chunkSize: 1400, frameId: 7, virtio: tsoVirtio)
        let other = fragmentPieces(ipv4Frame(size: 2000, flags: 0x4000), chunkSize: 600, frameId: 8, virtio: tsoVirtio)
        return [framed(pieces), framed(pieces.reversed()), framed([pieces[0], other[0], pieces[2], other[1], pieces[1], other[2], other[3]])]
    }),
]
