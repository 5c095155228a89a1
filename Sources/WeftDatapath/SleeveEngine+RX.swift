// The UDP → TAP direction of the sleeve, on thread weft-udp-rx: receives batches (GRO trains
// split again into their datagrams), authenticates every packet, answers heartbeats and probes,
// delivers frames to the TAP and relays what is for other peers, cut or answered when it does
// not fit the next hop (docs/protocol.md §5.4). Nothing here allocates, throws or logs per
// packet: the thread's buffers are made once in `udpLoop` and passed on in one `RXState`.
import CWeftShims
import Foundation
import WeftCrypto
import WeftWire

extension SleeveEngine {
    /// Receives per recvmmsg: each buffer may hold a GRO train of up to 64 KiB.
    static let receiveBatch = 16
    static let receiveSlot = 65536

    /// Everything the UDP thread works with. Made once by `udpLoop`, owned by that thread alone
    /// and freed when it ends; the per-batch fields are set at the start of every batch.
    struct RXState {
        /// Received trains, `receiveBatch` × `receiveSlot`: opened in place packet by packet; a
        /// heartbeat or probe is answered from its own buffer. Valid until the next receive.
        let slab: UnsafeMutableRawPointer
        /// `batch` relay packets of `packetSlot` bytes each, after the trains in the same
        /// allocation; reused once `out` has been flushed (`relays` counts the used ones).
        let relaySlab: UnsafeMutableRawPointer
        let packetSlot: Int
        /// A frame record holding an ICMP too-big answer or an IPv4 fragment, built here and
        /// copied into a relay slot by `relay`.
        let answer: UnsafeMutableRawPointer
        /// An all-zero virtio header (a plain frame goes to the TAP with nothing to offload) and
        /// the two-entry iovec that writes it in front of a frame.
        let zeroHeader: UnsafeMutableRawPointer
        let iov: UnsafeMutablePointer<iovec>
        var reassembly = Reassembly()
        /// Answers and relayed packets of this batch, pointing into `slab` and `relaySlab`.
        var out = OutBatch(capacity: 2 * SleeveEngine.batch)
        var relays = 0
        // Per batch.
        var table = ForwardingTable.empty
        var own: UInt16 = 0
        var now: Int64 = 0

        init(maxPayload: Int) {
            packetSlot = (max(maxPayload, 2048) + 63) & ~63
            slab = .allocate(byteCount: SleeveEngine.receiveBatch * SleeveEngine.receiveSlot + SleeveEngine.batch * packetSlot, alignment: 64)
            relaySlab = slab + SleeveEngine.receiveBatch * SleeveEngine.receiveSlot
            answer = .allocate(byteCount: max(packetSlot, Sleeve.frameHeaderSize + ICMPTooBig.maxReply), alignment: 16)
            zeroHeader = .allocate(byteCount: VirtioNetHeader.size, alignment: 16)
            zeroHeader.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)
            iov = .allocate(capacity: 2)
            iov.initialize(repeating: iovec(), count: 2)
        }

        func deallocate() {
            slab.deallocate()
            answer.deallocate()
            zeroHeader.deallocate()
            iov.deallocate()
            reassembly.buffer.deallocate()
        }
    }

    func udpLoop() {
        var rx = RXState(maxPayload: maxPayload)
        defer { rx.deallocate() }
        var pointers = (0..<Self.receiveBatch).map { Optional(rx.slab + $0 * Self.receiveSlot) }
        var lengths = [Int](repeating: 0, count: Self.receiveBatch)
        var segments = [UInt16](repeating: 0, count: Self.receiveBatch)
        var addresses = [sockaddr_in6](repeating: sockaddr_in6(), count: Self.receiveBatch)
        var pfd = pollfd(fd: udpFD, events: Int16(POLLIN), revents: 0)

        while !stopping.load(ordering: .relaxed) {
            pfd.revents = 0
            guard poll(&pfd, 1, 500) > 0 else { continue }
            for i in 0..<Self.receiveBatch { lengths[i] = Self.receiveSlot }
            let n = pointers.withUnsafeMutableBufferPointer { p in
                lengths.withUnsafeMutableBufferPointer { l in
                    addresses.withUnsafeMutableBufferPointer { a in
                        segments.withUnsafeMutableBufferPointer { g in
                            weft_recv_batch_gro(udpFD, UnsafePointer(p.baseAddress!), l.baseAddress!, a.baseAddress!, g.baseAddress!,
                                                Int32(Self.receiveBatch), Int32(MSG_DONTWAIT))
                        }
                    }
                }
            }
            if n <= 0 { continue }
            rx.table = forwarding.current
            rx.own = rx.table.ownShortId
            rx.now = Self.monotonicNanos()
            rx.relays = 0
            for i in 0..<Int(n) {
                receiveTrain(rx.slab + i * Self.receiveSlot, length: lengths[i], segment: Int(segments[i]), from: UnderlayAddress(raw: addresses[i]), &rx)
            }
            flush(&rx.out)
        }
    }

    /// A GRO train holds datagrams of `segment` bytes each (the last may be shorter); 0: one datagram.
    @inline(__always)
    private func receiveTrain(_ train: UnsafeMutableRawPointer, length: Int, segment: Int, from address: UnderlayAddress, _ rx: inout RXState) {
        // An empty datagram has no header: dropped and counted as malformed, like a short one.
        guard length > 0 else { return SleeveCounters.add(stray.dropMalformed, 1) }
        let step = segment == 0 ? length : segment
        var offset = 0
        while offset < length {
            receive(train + offset, min(step, length - offset), from: address, &rx)
            offset += step
        }
    }

    /// One datagram: authenticated, then handled by its kind.
    @inline(__always)
    private func receive(_ p: UnsafeMutableRawPointer, _ length: Int, from address: UnderlayAddress, _ rx: inout RXState) {
        guard let header = Sleeve.readHeader(p, length: length), header.receiver == rx.own,
              let session = rx.table.session(header.sender) else {
            SleeveCounters.add(stray.dropMalformed, 1)
            return
        }
        guard let bodyLength = open(p, length, header, session) else { return }
        session.learn(address)
        session.lastReceive.store(rx.now, ordering: .relaxed)
        if header.kind == .data || header.kind == .fragment { SleeveCounters.add(session.counters.rxPackets, 1) }
        let body = p + Sleeve.headerSize

        switch header.kind {
        case .heartbeat:
            // Answer with the same body; the buffer is ours to reuse.
            let total = finish(p, bodyLength: bodyLength, kind: .heartbeatAck, session: session, own: rx.own)
            enqueue(p, total, session, &rx)
        case .heartbeatAck:
            session.lastHeartbeatAck.store(rx.now, ordering: .relaxed)
        case .pmtuProbe:
            // Acknowledge with the size that arrived, in a small packet.
            body.storeBytes(of: UInt16(length).bigEndian, as: UInt16.self)
            let total = finish(p, bodyLength: 2, kind: .pmtuAck, session: session, own: rx.own)
            enqueue(p, total, session, &rx)
        case .pmtuAck:
            guard bodyLength >= 2 else { break }
            let size = Int(UInt16(bigEndian: body.loadUnaligned(as: UInt16.self)))
            if size <= session.linkPayload && size > session.probeBest.load(ordering: .relaxed) {
                session.probeBest.store(size, ordering: .relaxed)
            }
        case .fragment:
            receivePiece(body, bodyLength, sender: header.sender, session: session, &rx)
        case .data:
            receiveFrames(body, bodyLength, sender: header.sender, session: session, &rx)
        }
    }

    /// Checks the packet and opens it in place when sealed; returns the body length, or nil
    /// when it is dropped (and counted).
    @inline(__always)
    private func open(_ p: UnsafeMutableRawPointer, _ length: Int, _ header: Sleeve.Header, _ session: SleeveSession) -> Int? {
        let bodyLength: Int
        if header.sealed {
            guard let key = session.keys.receiveKey(epoch: header.epoch) else {
                SleeveCounters.add(session.counters.dropBadTag, 1)
                return nil
            }
            // Tag first, so a tampered packet is counted as such whatever its counter;
            // the window moves only for authentic packets.
            bodyLength = key.open(p, headerLength: Sleeve.headerSize, length: length, counter: header.counter)
            guard bodyLength >= 0 else {
                SleeveCounters.add(session.counters.dropBadTag, 1)
                return nil
            }
        } else {
            // A clear packet on an encrypted link is as good as a forged one.
            guard !session.encrypted else {
                SleeveCounters.add(session.counters.dropBadTag, 1)
                return nil
            }
            bodyLength = length - Sleeve.headerSize
        }
        guard session.commitReplay(epoch: header.epoch, counter: header.counter) else {
            SleeveCounters.add(session.counters.dropReplay, 1)
            return nil
        }
        return bodyLength
    }

    /// A piece of a super-frame: into reassembly when it is for us (or flooded), and on to the
    /// next hops as it is (flooded along the source's tree, or towards its destination).
    @inline(__always)
    private func receivePiece(_ body: UnsafeMutableRawPointer, _ bodyLength: Int, sender: UInt16, session: SleeveSession, _ rx: inout RXState) {
        guard let piece = FragmentHeader.load(body, bodyLength: bodyLength), piece.source != rx.own else {
            SleeveCounters.add(session.counters.dropMalformed, 1)
            return
        }
        let chunk = UnsafeRawPointer(body + FragmentHeader.size)
        let chunkLength = bodyLength - FragmentHeader.size
        if piece.destination == rx.own || piece.destination == Sleeve.broadcastShortId,
           let slot = rx.reassembly.add(piece, chunk: chunk, length: chunkLength) {
            let frame = rx.reassembly.buffer + slot * Reassembly.slotSize
            forwarding.macs.learn(MACTable.key(frame + VirtioNetHeader.size + 6), peer: piece.source)
            session.counters.frameReceived(bytes: Int(piece.totalLength))
            _ = write(tapFD, frame, VirtioNetHeader.size + Int(piece.totalLength))
        }
        // Only the first piece carries the headers a too-big answer quotes.
        if piece.destination == Sleeve.broadcastShortId, Int(piece.source) < ForwardingTable.slots {
            for hop in rx.table.broadcast[Int(piece.source)] where hop != sender {
                if let next = rx.table.session(hop), !relay(body, bodyLength, kind: .fragment, frameBytes: chunkLength, via: next, &rx),
                   piece.index == 0 {
                    tooBig(chunk, chunkLength, whole: false, source: piece.source, destination: piece.destination, next: next, &rx)
                }
            }
        } else if piece.destination != rx.own, let next = rx.table.route(to: piece.destination), next !== session,
                  !relay(body, bodyLength, kind: .fragment, frameBytes: chunkLength, via: next, &rx), piece.index == 0 {
            tooBig(chunk, chunkLength, whole: false, source: piece.source, destination: piece.destination, next: next, &rx)
        }
    }

    /// The frame records of a DATA body: delivered when for us (or flooded), relayed otherwise.
    /// A body with a malformed record is dropped whole.
    @inline(__always)
    private func receiveFrames(_ body: UnsafeMutableRawPointer, _ bodyLength: Int, sender: UInt16, session: SleeveSession, _ rx: inout RXState) {
        let ok = Sleeve.forEachFrame(in: body, length: bodyLength) { record in
            receiveFrame(record, in: body, sender: sender, session: session, &rx)
        }
        if !ok { SleeveCounters.add(session.counters.dropMalformed, 1) }
    }

    @inline(__always)
    private func receiveFrame(_ record: Sleeve.FrameRecord, in body: UnsafeMutableRawPointer, sender: UInt16, session: SleeveSession,
                              _ rx: inout RXState) {
        let frame = UnsafeRawPointer(body + record.offset)
        guard record.source != rx.own else { return }
        if record.source != Sleeve.broadcastShortId {
            forwarding.macs.learn(MACTable.key(frame + 6), peer: record.source)
        }
        session.counters.frameReceived(bytes: record.length)
        let recordStart = UnsafeRawPointer(body + record.offset - Sleeve.frameHeaderSize)
        let recordLength = Sleeve.frameHeaderSize + record.length
        if record.destination == rx.own {
            deliver(frame, record.length, &rx)
        } else if record.destination == Sleeve.broadcastShortId {
            deliver(frame, record.length, &rx)
            guard Int(record.source) < ForwardingTable.slots else { return }
            for hop in rx.table.broadcast[Int(record.source)] where hop != sender {
                if let next = rx.table.session(hop), !relay(recordStart, recordLength, kind: .data, frameBytes: record.length, via: next, &rx) {
                    tooBig(frame, record.length, whole: true, source: record.source, destination: record.destination, next: next, &rx)
                }
            }
        } else if let next = rx.table.route(to: record.destination), next !== session,
                  !relay(recordStart, recordLength, kind: .data, frameBytes: record.length, via: next, &rx) {
            tooBig(frame, record.length, whole: true, source: record.source, destination: record.destination, next: next, &rx)
        }
    }

    /// Writes a frame to the TAP behind the all-zero virtio header.
    @inline(__always)
    private func deliver(_ frame: UnsafeRawPointer, _ length: Int, _ rx: inout RXState) {
        rx.iov[0] = iovec(iov_base: rx.zeroHeader, iov_len: VirtioNetHeader.size)
        rx.iov[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: frame), iov_len: length)
        _ = writev(tapFD, rx.iov, 2)
    }

    /// Queues a packet, sending the queue first when it is full.
    @inline(__always)
    private func enqueue(_ p: UnsafeMutableRawPointer, _ length: Int, _ session: SleeveSession, _ rx: inout RXState) {
        if rx.out.isFull {
            flush(&rx.out)
            rx.relays = 0
        }
        rx.out.add(p, length, session)
    }

    /// Re-seals a record (a frame with its record header, or a piece) towards the next hop.
    /// Returns false when it does not fit that hop (dropped and counted).
    @inline(__always) @discardableResult
    private func relay(_ body: UnsafeRawPointer, _ bodyLength: Int, kind: SleeveKind, frameBytes: Int, via session: SleeveSession,
                       _ rx: inout RXState) -> Bool {
        if rx.relays == Self.batch {
            flush(&rx.out)
            rx.relays = 0
        }
        guard Sleeve.headerSize + bodyLength + Sleeve.tagSize <= min(rx.packetSlot, session.pathPayload.load(ordering: .relaxed)) else {
            SleeveCounters.add(session.counters.dropTooBig, 1)
            return false
        }
        let p = rx.relaySlab + rx.relays * rx.packetSlot
        rx.relays += 1
        (p + Sleeve.headerSize).copyMemory(from: body, byteCount: bodyLength)
        let total = finish(p, bodyLength: bodyLength, kind: kind, session: session, own: rx.own)
        session.counters.frameSent(bytes: frameBytes)
        enqueue(p, total, session, &rx)
        return true
    }

    /// A relayed frame (or a super-frame's first piece, which starts with its headers:
    /// `whole` false) did not fit the next hop `next` (docs/protocol.md §5.4). An IPv4
    /// packet without DF goes on in IPv4 fragments that fit the route onward; otherwise
    /// the sender's workload gets an ICMP too-big naming that route's MTU, in a record from
    /// the frame's destination peer back to its source peer, so it reaches the workload
    /// like any frame. A flooded frame (destination 0xFFFF) is cut for, or answered
    /// about, the one child it did not fit; the answer's source is then 0xFFFF too.
    private func tooBig(_ frame: UnsafeRawPointer, _ length: Int, whole: Bool, source: UInt16, destination: UInt16, next: SleeveSession,
                        _ rx: inout RXState) {
        let mtu = Sleeve.overlayMTU(payload: rx.table.payloadLimit(to: destination, via: next))
        let answer = rx.answer
        let pieces = whole ? IPv4Fragments.count(frame: frame, length: length, mtu: mtu) : 0
        for k in 0..<pieces {
            let n = IPv4Fragments.write(frame: frame, length: length, mtu: mtu, index: k, into: answer + Sleeve.frameHeaderSize)
            Sleeve.writeFrameHeader(length: n, source: source, destination: destination, to: answer)
            relay(answer, Sleeve.frameHeaderSize + n, kind: .data, frameBytes: n, via: next, &rx)
        }
        if pieces > 0 { return }
        let n = ICMPTooBig.build(frame: frame, length: length, mtu: mtu, into: answer + Sleeve.frameHeaderSize)
        guard n > 0, let back = rx.table.route(to: source) else { return }
        Sleeve.writeFrameHeader(length: n, source: destination, destination: source, to: answer)
        if relay(answer, Sleeve.frameHeaderSize + n, kind: .data, frameBytes: n, via: back, &rx) {
            SleeveCounters.add(next.counters.txTooBig, 1)
        }
    }
}
