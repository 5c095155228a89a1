// The TAP → UDP direction of the sleeve, stage 1 on thread weft-tap-rx (SleeveEngine+Pipeline.swift
// for stage 2): reads a batch of frames from the TAP, routes each (unicast by the MAC table, the
// rest along our broadcast tree), packs the frames for one peer into shared DATA packets, cuts
// frames too big for their route into IPv4 fragments or answers them with ICMP too-big, and
// cuts TCP super-frames into FRAGMENT trains. Nothing here allocates, throws or logs per frame:
// the thread's buffers are made once in `tapLoop` and passed on in one `TXState`.
import CWeftShims
import Foundation
import WeftCrypto
import WeftWire

extension SleeveEngine {
    /// TX slot: [sleeve header 16][frame record 6][frame ≤ 64 KiB][tag 16]; the TAP's virtio
    /// header is read into the 10 bytes just before the frame and parsed before they are reused.
    static let txSlotSize = (frameOffset + 65536 + Sleeve.tagSize + 63) & ~63
    /// TX slots: the first `batch` take the frames read from the TAP, the rest copies of frames
    /// sent more than once (flooded) and IPv4 fragments.
    static let txSlots = batch * 2

    /// Everything the TAP thread works with. Made once by `tapLoop`, owned by that thread alone
    /// and freed when it ends; the per-batch fields are reset at the start of every batch.
    struct TXState {
        /// `txSlots` × `txSlotSize`: frames read from the TAP and the DATA packets built around
        /// them in place; sealed packets leave (or are copied into the pipeline) before the next read.
        let slab: UnsafeMutableRawPointer
        /// Where ICMP too-big answers are built before going to the TAP: a zero virtio header,
        /// then the answer.
        let icmp: UnsafeMutableRawPointer
        let pipeline: SendPipeline
        /// Frame lengths of the slots read this batch.
        var lengths = [Int](repeating: 0, count: SleeveEngine.batch)
        /// Sealed DATA packets of this batch, pointing into `slab`.
        var out = OutBatch(capacity: SleeveEngine.txSlots)
        /// Slots already holding a packet: a frame sent again is copied to a free slot first.
        var slotUsed = [Bool](repeating: false, count: SleeveEngine.txSlots)
        /// Packets closed but not sealed yet: sealing encrypts in place, and a flooded frame is
        /// still copied from its slot afterwards, so every packet is sealed only once all frames
        /// before it are placed.
        var pendingSlots = [Int](repeating: 0, count: SleeveEngine.txSlots)
        var pendingBodies = [Int](repeating: 0, count: SleeveEngine.txSlots)
        var pendingSessions = [SleeveSession?](repeating: nil, count: SleeveEngine.txSlots)
        var pending = 0
        /// The packet still open for appending: its slot, body length and session.
        var openSlot = -1
        var openBody = 0
        var openSession: SleeveSession?
        /// The next free copy slot.
        var copies = SleeveEngine.batch
        /// The frame id of the last super-frame sent.
        var frameIds: UInt32 = 0
        // Per batch.
        var table = ForwardingTable.empty
        var own: UInt16 = 0
        var fastdpAttached = false

        init(pipeline: SendPipeline) {
            self.pipeline = pipeline
            slab = .allocate(byteCount: SleeveEngine.txSlots * SleeveEngine.txSlotSize, alignment: 64)
            icmp = .allocate(byteCount: VirtioNetHeader.size + ICMPTooBig.maxReply, alignment: 16)
            icmp.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)
        }

        func deallocate() {
            slab.deallocate()
            icmp.deallocate()
        }

        @inline(__always)
        func frame(_ slot: Int) -> UnsafeMutableRawPointer { slab + slot * SleeveEngine.txSlotSize + SleeveEngine.frameOffset }
    }

    /// Stage 1 of the TAP → UDP pipeline: read, route, build and stamp; DATA packets are sealed
    /// here, super-frame pieces by stage 2.
    func tapLoop(_ pipeline: SendPipeline) {
        var tx = TXState(pipeline: pipeline)
        defer { tx.deallocate() }
        var pfd = pollfd(fd: tapFD, events: Int16(POLLIN), revents: 0)
        let maxRead = VirtioNetHeader.size + 65535

        while !stopping.load(ordering: .relaxed) {
            pfd.revents = 0
            guard poll(&pfd, 1, 500) > 0 else { continue }
            var n = 0
            while n < Self.batch {
                let r = read(tapFD, tx.frame(n) - VirtioNetHeader.size, maxRead)
                if r < 0 { break }
                if r < VirtioNetHeader.size + Overhead.ethernetHeader { continue }
                tx.lengths[n] = r - VirtioNetHeader.size
                n += 1
            }
            if n == 0 { continue }
            tx.table = forwarding.current
            tx.own = tx.table.ownShortId
            if tx.own == 0xFFFF { continue }
            tx.fastdpAttached = forwarding.fastdpAttached.load(ordering: .relaxed)
            for i in 0..<Self.txSlots { tx.slotUsed[i] = false }
            tx.copies = Self.batch
            for i in 0..<n { send(slot: i, &tx) }
            sealPending(&tx)
            ship(&tx.out, pipeline)
        }
    }

    /// Where a frame read from the TAP goes.
    enum TXRoute {
        /// Nowhere (no route, or already taken care of).
        case none
        /// To `peer` through neighbour `session`.
        case unicast(SleeveSession, peer: UInt16)
        /// Broadcast, multicast and unknown unicast: along our own broadcast tree.
        case flood
    }

    /// One frame read from the TAP, in slot `i`: routed, then placed into packets.
    @inline(__always)
    private func send(slot i: Int, _ tx: inout TXState) {
        let frame = tx.frame(i)
        let header = VirtioNetHeader.loadNative(frame - VirtioNetHeader.size)
        if !header.isSuperFrame, header.flags & VirtioNetHeader.needsChecksum != 0,
           !InternetChecksum.complete(frame: frame, length: tx.lengths[i], start: Int(header.checksumStart), offset: Int(header.checksumOffset)) {
            // A single frame with a partial checksum is finished here, so the peer can hand it
            // to its kernel as an ordinary frame.
            SleeveCounters.add(stray.dropMalformed, 1)
            return
        }
        switch route(slot: i, superFrame: header.isSuperFrame, &tx) {
        case .none:
            return
        case .unicast(let session, let peer):
            place(slot: i, header, to: session, destination: peer, &tx)
        case .flood:
            // Except to neighbours on fastdp: the bridge gave the fast datapath its own copy.
            for hop in tx.table.broadcast[Int(tx.own)] {
                if let session = tx.table.session(hop), !session.fastdp.selected.load(ordering: .relaxed) {
                    place(slot: i, header, to: session, destination: Sleeve.broadcastShortId, &tx)
                }
            }
        }
    }

    @inline(__always)
    private func place(slot i: Int, _ header: VirtioNetHeader, to session: SleeveSession, destination: UInt16, _ tx: inout TXState) {
        if header.isSuperFrame {
            emitSuperFrame(slot: i, header, to: session, destination: destination, &tx)
        } else {
            emit(slot: i, tx.lengths[i], to: session, destination: destination, &tx)
        }
    }

    /// Routes the frame in slot `i`; a frame for a peer on fastdp may be handed over here.
    @inline(__always)
    private func route(slot i: Int, superFrame: Bool, _ tx: inout TXState) -> TXRoute {
        let frame = UnsafeRawPointer(tx.frame(i))
        // A remote peer's frame that the fast datapath delivered to the bridge, which
        // passed it on to us too: its senders already took care of it.
        let owners = forwarding.macs.owners(ofFrame: frame)
        if tx.fastdpAttached, let owner = owners.source, owner != tx.own { return .none }
        let multicast = frame.load(as: UInt8.self) & 1 != 0
        guard !multicast, let peer = owners.destination, peer != tx.own else { return .flood }
        guard let session = tx.table.route(to: peer) else { return .none }
        // The bridge still sends this peer's MACs our way (it learned them while the
        // link was on sleeve): pass the frame to the fast datapath, so the peer's
        // bridge, then ours, learn the new way. Super-frames stay on sleeve (the
        // peer takes both), a moment later they follow.
        if tx.fastdpAttached, !superFrame, session.fastdp.selected.load(ordering: .relaxed),
           forwarding.handToFastdp(frame, length: tx.lengths[i], source: tx.own, destination: peer, via: session) {
            return .none
        }
        return .unicast(session, peer: peer)
    }

    /// Closes the open packet: it joins the packets waiting to be sealed.
    @inline(__always)
    private func closePacket(_ tx: inout TXState) {
        guard tx.openSlot >= 0, let session = tx.openSession else { return }
        tx.pendingSlots[tx.pending] = tx.openSlot
        tx.pendingBodies[tx.pending] = tx.openBody
        tx.pendingSessions[tx.pending] = session
        tx.pending += 1
        tx.openSlot = -1
        tx.openSession = nil
    }

    /// Seals every packet waiting (the open one too) into `out`, in order.
    @inline(__always)
    private func sealPending(_ tx: inout TXState) {
        closePacket(&tx)
        for k in 0..<tx.pending {
            guard let session = tx.pendingSessions[k] else { continue }
            let p = tx.slab + tx.pendingSlots[k] * Self.txSlotSize
            tx.out.add(p, finish(p, bodyLength: tx.pendingBodies[k], kind: .data, session: session, own: tx.own), session)
            tx.pendingSessions[k] = nil
        }
        tx.pending = 0
    }

    /// Places the frame in slot `i` (`frameLength` bytes) into a packet for `session`.
    private func emit(slot i: Int, _ frameLength: Int, to session: SleeveSession, destination: UInt16, _ tx: inout TXState) {
        let frame = tx.frame(i)
        let needed = Sleeve.frameHeaderSize + frameLength
        let limit = tx.table.payloadLimit(to: destination, via: session)
        guard Sleeve.headerSize + needed + Sleeve.tagSize <= limit else {
            return emitFragments(frame, frameLength, limit: limit, to: session, destination: destination, &tx)
        }
        session.counters.frameSent(bytes: frameLength)
        // Several frames to the same peer share one packet when they fit.
        if tx.openSession === session, Sleeve.headerSize + tx.openBody + needed + Sleeve.tagSize <= limit {
            let at = tx.slab + tx.openSlot * Self.txSlotSize + Sleeve.headerSize + tx.openBody
            Sleeve.writeFrameHeader(length: frameLength, source: tx.own, destination: destination, to: at)
            (at + Sleeve.frameHeaderSize).copyMemory(from: frame, byteCount: frameLength)
            tx.openBody += needed
            return
        }
        closePacket(&tx)
        var slot = i
        if tx.slotUsed[i] {
            guard tx.copies < Self.txSlots else { return }
            slot = tx.copies
            tx.copies += 1
            tx.frame(slot).copyMemory(from: frame, byteCount: frameLength)
        }
        tx.slotUsed[slot] = true
        Sleeve.writeFrameHeader(length: frameLength, source: tx.own, destination: destination,
                                to: tx.slab + slot * Self.txSlotSize + Sleeve.headerSize)
        tx.openSlot = slot
        tx.openBody = needed
        tx.openSession = session
    }

    /// A frame too big for its route (`limit`): an IPv4 packet without DF is cut into IPv4
    /// fragments that fit, each in a copy slot; anything else is answered with ICMP too-big.
    private func emitFragments(_ frame: UnsafeMutableRawPointer, _ frameLength: Int, limit: Int, to session: SleeveSession,
                               destination: UInt16, _ tx: inout TXState) {
        let mtu = Sleeve.overlayMTU(payload: limit)
        let pieces = IPv4Fragments.count(frame: frame, length: frameLength, mtu: mtu)
        guard pieces > 0 else { return tooBig(frame, frameLength, limit: limit, session: session, scratch: tx.icmp) }
        guard tx.copies + pieces <= Self.txSlots else { return SleeveCounters.add(session.counters.dropTooBig, 1) }
        for k in 0..<pieces {
            let slot = tx.copies
            tx.copies += 1
            let length = IPv4Fragments.write(frame: frame, length: frameLength, mtu: mtu, index: k, into: tx.frame(slot))
            emit(slot: slot, length, to: session, destination: destination, &tx)
        }
    }

    /// A TCP super-frame from the TAP's segmentation offload: cut into pieces that fill
    /// the path, each sealed on its own; the peer reassembles and hands the kernel the
    /// whole super-frame (it segments, or passes it on as GSO to a local workload).
    private func emitSuperFrame(slot i: Int, _ header: VirtioNetHeader, to session: SleeveSession, destination: UInt16, _ tx: inout TXState) {
        let frameLength = tx.lengths[i]
        let frame = tx.frame(i)
        // Each segment must still fit the route once the peer's kernel cuts it, and every
        // piece every hop: relays pass pieces on as they are.
        let limit = tx.table.payloadLimit(to: destination, via: session)
        if let segment = header.segmentIPLength(frame: frame, length: frameLength), segment > Sleeve.overlayMTU(payload: limit) {
            tooBig(frame, frameLength, limit: limit, session: session, scratch: tx.icmp)
            return
        }
        let overhead = Sleeve.headerSize + FragmentHeader.size + (session.encrypted ? Sleeve.tagSize : 0)
        let chunk = limit - overhead
        let count = (frameLength + chunk - 1) / chunk
        guard chunk >= 256, count <= FragmentHeader.maxCount else {
            SleeveCounters.add(session.counters.dropTooBig, 1)
            return
        }
        sealPending(&tx)
        tx.frameIds &+= 1
        session.counters.frameSent(bytes: frameLength)
        // What came before this super-frame leaves before it.
        ship(&tx.out, tx.pipeline)
        // Pieces back to back, all of one size but the last: one slot, one send per train.
        let stride = overhead + chunk
        let perTrain = min(Self.batch, 65507 / stride)
        let keys = session.keys
        let address = session.remoteAddress
        var index = 0
        while index < count {
            guard let slot = acquireSlot(tx.pipeline) else { return }
            let inThisTrain = min(perTrain, count - index)
            var bytes = 0
            for k in 0..<inThisTrain {
                let piece = index + k
                let p = slot.pointee.buffer + bytes
                let offset = piece * chunk
                let size = min(chunk, frameLength - offset)
                FragmentHeader(source: tx.own, destination: destination, frameId: tx.frameIds, index: UInt16(piece), count: UInt16(count),
                               chunkSize: UInt16(chunk), totalLength: UInt32(frameLength), virtio: header)
                    .store(p + Sleeve.headerSize)
                (p + Sleeve.headerSize + FragmentHeader.size).copyMemory(from: frame + offset, byteCount: size)
                bytes += stamp(p, bodyLength: FragmentHeader.size + size, kind: .fragment, session: session, own: tx.own, keys: keys).length
            }
            slot.pointee.trainBytes = bytes
            slot.pointee.stride = stride
            slot.pointee.session = session
            slot.pointee.key = keys.tx
            slot.pointee.address = address
            handOver(tx.pipeline)
            index += inThisTrain
        }
    }
}
