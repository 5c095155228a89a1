// The sleeve data plane (docs/design.md §3): one thread moves frames from the TAP device to peers over
// UDP, in two stages (read, route and stamp; then seal and send — SleeveEngine+Pipeline.swift;
// `WEFT_PIPELINE=on` gives the second stage a thread of its own), another moves packets from UDP
// to the TAP device or on to the next hop. All work in batches
// over preallocated slabs; nothing on the packet path allocates, throws or logs.
import CWeftShims
import Foundation
import Synchronization
import WeftCrypto
import WeftWire

public struct DatapathError: Error, CustomStringConvertible {
    public let description: String
    init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
}

public final class SleeveEngine: @unchecked Sendable {  // threads own their slabs; shared state is atomic or locked
    public let port: Int
    let udpFD: Int32
    let tapFD: Int32
    /// Largest UDP payload this router sends: the underlay MTU minus IP and UDP headers.
    public let maxPayload: Int
    private let table = Mutex<ForwardingTable>(.empty)
    public let macs = MACTable()
    /// Drops that cannot be charged to a connection (unknown sender, not for us, truncated).
    public let stray = SleeveCounters()
    let stopping = Atomic<Bool>(false)
    /// UDP GSO for the pieces of super-frames; turned off for good if the kernel refuses it.
    let gsoEnabled: Atomic<Bool>
    private let finished = DispatchGroup()
    /// Scratch for heartbeats sent from the control plane; guarded by its lock.
    private let heartbeatBuffer = Mutex<[UInt8]>([UInt8](repeating: 0, count: 64))
    /// Set while a fast datapath shares the bridge: frames of remote peers can then reach the TAP.
    let fastdpAttached = Atomic<Bool>(false)
    /// The fast datapath sharing the bridge, for frames the bridge sends us for a fastdp peer.
    private let fastdp = Mutex<FastDatapath?>(nil)

    /// Joins (or, with nil, leaves) the fast datapath that shares the bridge.
    func attach(fastdp engine: FastDatapath?) {
        fastdp.withLock { $0 = engine }
        fastdpAttached.store(engine != nil, ordering: .relaxed)
    }

    private func handToFastdp(_ frame: UnsafeRawPointer, _ length: Int, source: UInt16, destination: UInt16,
                              via session: SleeveSession) -> Bool {
        fastdp.withLock { $0?.forward(frame, length: length, source: source, destination: destination, via: session) } ?? false
    }
    /// Frames handed over by the fast datapath's miss thread: one at a time, sealed in place.
    private let handoffBuffer = Mutex<[UInt8]>([UInt8](repeating: 0, count: 65536 + 64))
    /// Where a hand-off too big for its route is cut into fragments or answered (`tooBig`).
    private let handoffScratch: Mutex<[UInt8]>
    /// Scratch for path-MTU probes, as large as the largest probe.
    private let probeBuffer: Mutex<[UInt8]>

    static let batch = Int(WEFT_BATCH_MAX)
    static let frameOffset = Sleeve.headerSize + Sleeve.frameHeaderSize

    public init(tapFD: Int32, port: Int, underlayMTU: Int) throws {
        self.tapFD = tapFD
        self.port = port
        self.maxPayload = underlayMTU - Overhead.ipv4UDPHeaders
        self.probeBuffer = Mutex([UInt8](repeating: 0, count: max(underlayMTU, 576)))
        self.handoffScratch = Mutex([UInt8](repeating: 0, count: max(underlayMTU, VirtioNetHeader.size + ICMPTooBig.maxReply)))
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw DatapathError("cannot create the sleeve UDP socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var bufferSize: Int32 = 4 << 20
        for option in [SO_RCVBUFFORCE, SO_SNDBUFFORCE] {
            setsockopt(fd, SOL_SOCKET, option, &bufferSize, socklen_t(MemoryLayout<Int32>.size))
        }
        _ = weft_set_dont_fragment(fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let error = DatapathError("cannot bind UDP port \(port) for sleeve")
            close(fd)
            throw error
        }
        udpFD = fd
        gsoEnabled = Atomic(weft_udp_gso_supported(fd) != 0 && ProcessInfo.processInfo.environment["WEFT_NO_UDP_GSO"] == nil)
        // GRO joins the datagrams of a GSO train on receive; split again in udpLoop.
        _ = weft_enable_udp_gro(fd)
        let flags = fcntl(tapFD, F_GETFL)
        _ = fcntl(tapFD, F_SETFL, flags | O_NONBLOCK)
    }

    public func start() {
        let pipeline = SendPipeline(threaded: Self.pipelineThreaded)
        var loops: [(String, @Sendable () -> Void)] = [("weft-tap-rx", { self.tapLoop(pipeline) }), ("weft-udp-rx", udpLoop)]
        if pipeline.threaded { loops.append(("weft-udp-tx", { self.sendLoop(pipeline) })) }
        for (name, body) in loops { DataPlaneThread.start(name, finished: finished, body) }
    }

    /// Stops the threads (they notice within a poll interval) and closes the UDP socket.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        _ = finished.wait(timeout: .now() + 3)
        close(udpFD)
    }

    public func install(_ newTable: ForwardingTable) {
        table.withLock { $0 = newTable }
    }

    var currentTable: ForwardingTable { table.withLock { $0 } }

    public static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    // MARK: sending

    /// Writes the header with the session's next counter and `keys`' epoch, and returns the
    /// packet's length once sealed (room for the tag counted when `keys` seal); the body is left
    /// in clear for `finish` or the pipeline's stage 2 to seal.
    @inline(__always)
    func stamp(_ packet: UnsafeMutableRawPointer, bodyLength: Int, kind: SleeveKind, session: SleeveSession, own: UInt16,
               keys: SessionKeys) -> (length: Int, counter: UInt64) {
        let counter = session.nextCounter()
        if kind == .data || kind == .fragment { SleeveCounters.add(session.counters.txPackets, 1) }
        let header = Sleeve.Header(kind: kind, sealed: keys.tx != nil, epoch: keys.txEpoch, sender: own,
                                   receiver: session.peerShortId, counter: counter)
        Sleeve.writeHeader(header, to: packet)
        return (Sleeve.headerSize + bodyLength + (keys.tx != nil ? Sleeve.tagSize : 0), counter)
    }

    /// Writes the header, seals when the session is encrypted, and returns the packet length.
    /// `keys` may be passed in when many packets to one peer are finished together, so the
    /// session's key lock is taken once rather than per packet.
    @inline(__always)
    func finish(_ packet: UnsafeMutableRawPointer, bodyLength: Int, kind: SleeveKind, session: SleeveSession, own: UInt16,
                keys given: SessionKeys? = nil) -> Int {
        let keys = given ?? session.keys
        let (length, counter) = stamp(packet, bodyLength: bodyLength, kind: kind, session: session, own: own, keys: keys)
        if let key = keys.tx {
            _ = key.seal(packet, headerLength: Sleeve.headerSize, bodyLength: bodyLength, counter: counter)
        }
        return length
    }

    /// A batch of packets on their way out, flushed with one sendmmsg per 64.
    struct OutBatch {
        var pointers: [UnsafeMutableRawPointer?]
        var lengths: [Int]
        var addresses: [sockaddr_in]
        var sessions: [SleeveSession?]
        var count = 0

        init(capacity: Int) {
            pointers = Array(repeating: nil, count: capacity)
            lengths = Array(repeating: 0, count: capacity)
            addresses = Array(repeating: sockaddr_in(), count: capacity)
            sessions = Array(repeating: nil, count: capacity)
        }

        var isFull: Bool { count == pointers.count }

        @inline(__always)
        mutating func add(_ p: UnsafeMutableRawPointer, _ length: Int, _ session: SleeveSession) {
            add(p, length, address: session.remoteAddress, session: session)
        }

        @inline(__always)
        mutating func add(_ p: UnsafeMutableRawPointer, _ length: Int, address: sockaddr_in, session: SleeveSession?) {
            pointers[count] = p
            lengths[count] = length
            addresses[count] = address
            sessions[count] = session
            count += 1
        }

        mutating func clear() {
            for i in 0..<count { sessions[i] = nil }
            count = 0
        }
    }

    func flush(_ out: inout OutBatch) {
        var start = 0
        while start < out.count {
            let sent = out.pointers.withUnsafeBufferPointer { p in
                out.lengths.withUnsafeBufferPointer { l in
                    out.addresses.withUnsafeBufferPointer { a in
                        weft_send_batch(udpFD, UnsafePointer(p.baseAddress! + start), l.baseAddress! + start,
                                        a.baseAddress! + start, Int32(min(out.count - start, Self.batch)))
                    }
                }
            }
            if sent > 0 {
                start += Int(sent)
                continue
            }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                var p = pollfd(fd: udpFD, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 100)
                continue
            }
            // The first packet of the rest failed (EMSGSIZE: path MTU below it); drop it alone.
            if errno == EMSGSIZE, let session = out.sessions[start] {
                SleeveCounters.add(session.counters.dropTooBig, 1)
            }
            start += 1
        }
        out.clear()
    }

    /// Sends one heartbeat to every directly connected peer. Called by the control plane.
    public func sendHeartbeats() {
        let table = currentTable
        let now = Self.monotonicNanos()
        heartbeatBuffer.withLock { buffer in
            buffer.withUnsafeMutableBytes { raw in
                let p = raw.baseAddress!
                for case let session? in table.sessions {
                    (p + Sleeve.headerSize).storeBytes(of: now.bigEndian, as: Int64.self)
                    let length = finish(p, bodyLength: 8, kind: .heartbeat, session: session, own: table.ownShortId)
                    send(p, length, to: session)
                }
            }
        }
    }

    /// Underlay MTUs worth trying (common tunnel and link sizes), largest first.
    static let probeMTUs = [9000, 4000, 1500, 1492, 1480, 1460, 1454, 1450, 1440, 1420, 1400, 1380, 1360, 1350, 1300, 1280, 1200, 1000, 576]

    /// Starts a path-MTU probing round to every directly connected peer: one DF packet of each
    /// candidate size (real sizes, never larger than our own underlay allows). The answers
    /// arrive on the UDP thread; the control plane takes each session's result a moment later
    /// (`SleeveSession.finishProbeRound`).
    public func sendProbes() {
        let table = currentTable
        let sizes = ([maxPayload] + Self.probeMTUs.map { $0 - Overhead.ipv4UDPHeaders }).filter { $0 <= maxPayload && $0 >= 64 }
        probeBuffer.withLock { buffer in
            buffer.withUnsafeMutableBytes { raw in
                let p = raw.baseAddress!
                for case let session? in table.sessions {
                    for size in Set(sizes) {
                        let body = size - Sleeve.headerSize - (session.encrypted ? Sleeve.tagSize : 0)
                        guard body >= 2, size <= raw.count else { continue }
                        (p + Sleeve.headerSize).initializeMemory(as: UInt8.self, repeating: 0, count: body)
                        let length = finish(p, bodyLength: body, kind: .pmtuProbe, session: session, own: table.ownShortId)
                        send(p, length, to: session)
                    }
                }
            }
        }
    }

    /// Sends one frame from `source` to `destination` through neighbour `session`, from a thread
    /// other than the TAP thread: the fast datapath's hand-off for frames whose next hop is not
    /// on fastdp (a per-packet path, used only until flows and bridge learning settle).
    /// A frame too big for the route is cut or answered as on the TAP thread (docs/protocol.md §5.4).
    func send(frame: [UInt8], source: UInt16, destination: UInt16, via session: SleeveSession) {
        let limit = currentTable.payloadLimit(to: destination, via: session)
        frame.withUnsafeBytes { raw in
            guard let f = raw.baseAddress else { return }
            if Sleeve.headerSize + Sleeve.frameHeaderSize + raw.count + Sleeve.tagSize <= limit {
                return sendHandoff(f, raw.count, source: source, destination: destination, via: session)
            }
            let mtu = Sleeve.overlayMTU(payload: limit)
            let pieces = IPv4Fragments.count(frame: f, length: raw.count, mtu: mtu)
            handoffScratch.withLock { scratch in
                scratch.withUnsafeMutableBytes { out in
                    let p = out.baseAddress!
                    for k in 0..<pieces {
                        let n = IPv4Fragments.write(frame: f, length: raw.count, mtu: mtu, index: k, into: p)
                        sendHandoff(UnsafeRawPointer(p), n, source: source, destination: destination, via: session)
                    }
                    if pieces == 0 {
                        p.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)
                        tooBig(f, raw.count, limit: limit, session: session, scratch: p)
                    }
                }
            }
        }
    }

    /// Seals and sends one frame that fits, in the hand-off buffer.
    private func sendHandoff(_ frame: UnsafeRawPointer, _ frameLength: Int, source: UInt16, destination: UInt16, via session: SleeveSession) {
        let body = Sleeve.frameHeaderSize + frameLength
        handoffBuffer.withLock { buffer in
            buffer.withUnsafeMutableBytes { raw in
                guard Sleeve.headerSize + body + Sleeve.tagSize <= raw.count else { return }
                let p = raw.baseAddress!
                Sleeve.writeFrameHeader(length: frameLength, source: source, destination: destination, to: p + Sleeve.headerSize)
                (p + Sleeve.headerSize + Sleeve.frameHeaderSize).copyMemory(from: frame, byteCount: frameLength)
                SleeveCounters.add(session.counters.txFrames, 1)
                SleeveCounters.add(session.counters.txBytes, UInt64(frameLength))
                let length = finish(p, bodyLength: body, kind: .data, session: session, own: currentTable.ownShortId)
                send(p, length, to: session)
            }
        }
    }

    /// Drops an oversize frame for `session` and tells its sender, through the bridge, the MTU
    /// that fits the whole route (a UDP payload of `limit`). `scratch` holds a virtio header
    /// (zero) and `ICMPTooBig.maxReply` bytes after it, and belongs to the calling thread.
    func tooBig(_ frame: UnsafeRawPointer, _ length: Int, limit: Int, session: SleeveSession, scratch: UnsafeMutableRawPointer) {
        SleeveCounters.add(session.counters.dropTooBig, 1)
        let n = ICMPTooBig.build(frame: frame, length: length, mtu: Sleeve.overlayMTU(payload: limit), into: scratch + VirtioNetHeader.size)
        if n > 0, write(tapFD, scratch, VirtioNetHeader.size + n) > 0 { SleeveCounters.add(session.counters.txTooBig, 1) }
    }

    private func send(_ p: UnsafeRawPointer, _ length: Int, to session: SleeveSession) {
        var address = session.remoteAddress
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(udpFD, p, length, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    // MARK: TAP → UDP

    /// TX slot: [sleeve header 16][frame record 6][frame ≤ 64 KiB][tag 16]; the TAP's virtio
    /// header is read into the 10 bytes just before the frame and parsed before they are reused.
    static let txSlotSize = (frameOffset + 65536 + Sleeve.tagSize + 63) & ~63

    /// Stage 1 of the TAP → UDP pipeline (SleeveEngine+Pipeline.swift): read, route, build and
    /// stamp; DATA packets are sealed here, super-frame pieces by stage 2.
    private func tapLoop(_ pipeline: SendPipeline) {
        let slots = Self.batch * 2  // the second half holds copies of flooded frames
        // Owned by this thread for its whole life: frames read from the TAP and the DATA packets
        // built around them; sealed packets are copied out to the pipeline before the next read.
        let slab = UnsafeMutableRawPointer.allocate(byteCount: slots * Self.txSlotSize, alignment: 64)
        defer { slab.deallocate() }
        var frameIds: UInt32 = 0
        var lengths = [Int](repeating: 0, count: Self.batch)
        var out = OutBatch(capacity: slots)
        var slotUsed = [Bool](repeating: false, count: slots)
        var pendingSlots = [Int](repeating: 0, count: slots)
        var pendingBodies = [Int](repeating: 0, count: slots)
        var pendingSessions = [SleeveSession?](repeating: nil, count: slots)
        var pfd = pollfd(fd: tapFD, events: Int16(POLLIN), revents: 0)
        let maxRead = VirtioNetHeader.size + 65535
        // Owned by this thread: where ICMP "too big" answers are built before going to the TAP.
        let icmp = UnsafeMutableRawPointer.allocate(byteCount: VirtioNetHeader.size + ICMPTooBig.maxReply, alignment: 16)
        defer { icmp.deallocate() }
        icmp.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)

        while !stopping.load(ordering: .relaxed) {
            pfd.revents = 0
            guard poll(&pfd, 1, 500) > 0 else { continue }
            var n = 0
            while n < Self.batch {
                let at = slab + n * Self.txSlotSize + Self.frameOffset - VirtioNetHeader.size
                let r = read(tapFD, at, maxRead)
                if r < 0 { break }
                if r < VirtioNetHeader.size + Overhead.ethernetHeader { continue }
                lengths[n] = r - VirtioNetHeader.size
                n += 1
            }
            if n == 0 { continue }
            let table = currentTable
            let own = table.ownShortId
            if own == 0xFFFF { continue }
            let fastdpAttached = self.fastdpAttached.load(ordering: .relaxed)
            for i in 0..<slots { slotUsed[i] = false }
            var copies = Self.batch
            // The packet still open for appending: its slot, body length and session.
            var openSlot = -1
            var openBody = 0
            var openSession: SleeveSession?
            // Packets are sealed only after every frame before them has been placed: sealing
            // encrypts in place, and a flooded frame is still copied from its slot afterwards.
            var pending = 0

            func close() {
                guard openSlot >= 0, let session = openSession else { return }
                pendingSlots[pending] = openSlot
                pendingBodies[pending] = openBody
                pendingSessions[pending] = session
                pending += 1
                openSlot = -1
                openSession = nil
            }

            func sealPending() {
                close()
                for k in 0..<pending {
                    guard let session = pendingSessions[k] else { continue }
                    let p = slab + pendingSlots[k] * Self.txSlotSize
                    out.add(p, finish(p, bodyLength: pendingBodies[k], kind: .data, session: session, own: own), session)
                    pendingSessions[k] = nil
                }
                pending = 0
            }

            /// Places the frame in slot `i` (`frameLength` bytes) into a packet for `session`.
            func emit(_ i: Int, _ frameLength: Int, to session: SleeveSession, destination: UInt16) {
                let frame = slab + i * Self.txSlotSize + Self.frameOffset
                let needed = Sleeve.frameHeaderSize + frameLength
                let limit = table.payloadLimit(to: destination, via: session)
                guard Sleeve.headerSize + needed + Sleeve.tagSize <= limit else {
                    // IPv4 without DF: cut into IPv4 fragments that fit, each in a copy slot.
                    let mtu = Sleeve.overlayMTU(payload: limit)
                    let pieces = IPv4Fragments.count(frame: frame, length: frameLength, mtu: mtu)
                    guard pieces > 0 else { return tooBig(frame, frameLength, limit: limit, session: session, scratch: icmp) }
                    guard copies + pieces <= slots else { return SleeveCounters.add(session.counters.dropTooBig, 1) }
                    for k in 0..<pieces {
                        let slot = copies
                        copies += 1
                        let length = IPv4Fragments.write(frame: frame, length: frameLength, mtu: mtu, index: k,
                                                         into: slab + slot * Self.txSlotSize + Self.frameOffset)
                        emit(slot, length, to: session, destination: destination)
                    }
                    return
                }
                SleeveCounters.add(session.counters.txFrames, 1)
                SleeveCounters.add(session.counters.txBytes, UInt64(frameLength))
                // Several frames to the same peer share one packet when they fit.
                if openSession === session, Sleeve.headerSize + openBody + needed + Sleeve.tagSize <= limit {
                    let at = slab + openSlot * Self.txSlotSize + Sleeve.headerSize + openBody
                    Sleeve.writeFrameHeader(length: frameLength, source: own, destination: destination, to: at)
                    (at + Sleeve.frameHeaderSize).copyMemory(from: frame, byteCount: frameLength)
                    openBody += needed
                    return
                }
                close()
                var slot = i
                if slotUsed[i] {
                    guard copies < slots else { return }
                    slot = copies
                    copies += 1
                    (slab + slot * Self.txSlotSize + Self.frameOffset).copyMemory(from: frame, byteCount: frameLength)
                }
                slotUsed[slot] = true
                Sleeve.writeFrameHeader(length: frameLength, source: own, destination: destination,
                                        to: slab + slot * Self.txSlotSize + Sleeve.headerSize)
                openSlot = slot
                openBody = needed
                openSession = session
            }

            /// A TCP super-frame from the TAP's segmentation offload: cut into pieces that fill
            /// the path, each sealed on its own; the peer reassembles and hands the kernel the
            /// whole super-frame (it segments, or passes it on as GSO to a local workload).
            func emitSuperFrame(_ i: Int, _ header: VirtioNetHeader, to session: SleeveSession, destination: UInt16) {
                let frameLength = lengths[i]
                let frame = slab + i * Self.txSlotSize + Self.frameOffset
                // Each segment must still fit the route once the peer's kernel cuts it, and every
                // piece every hop: relays pass pieces on as they are.
                let limit = table.payloadLimit(to: destination, via: session)
                if let segment = header.segmentIPLength(frame: frame, length: frameLength), segment > Sleeve.overlayMTU(payload: limit) {
                    tooBig(frame, frameLength, limit: limit, session: session, scratch: icmp)
                    return
                }
                let overhead = Sleeve.headerSize + FragmentHeader.size + (session.encrypted ? Sleeve.tagSize : 0)
                let chunk = limit - overhead
                let count = (frameLength + chunk - 1) / chunk
                guard chunk >= 256, count <= FragmentHeader.maxCount else {
                    SleeveCounters.add(session.counters.dropTooBig, 1)
                    return
                }
                sealPending()
                frameIds &+= 1
                SleeveCounters.add(session.counters.txFrames, 1)
                SleeveCounters.add(session.counters.txBytes, UInt64(frameLength))
                // What came before this super-frame leaves before it.
                ship(&out, pipeline)
                // Pieces back to back, all of one size but the last: one slot, one send per train.
                let stride = overhead + chunk
                let perTrain = min(Self.batch, 65507 / stride)
                let keys = session.keys
                let address = session.remoteAddress
                var index = 0
                while index < count {
                    guard let slot = acquireSlot(pipeline) else { return }
                    let inThisTrain = min(perTrain, count - index)
                    var bytes = 0
                    for k in 0..<inThisTrain {
                        let piece = index + k
                        let p = slot.pointee.buffer + bytes
                        let offset = piece * chunk
                        let size = min(chunk, frameLength - offset)
                        FragmentHeader(source: own, destination: destination, frameId: frameIds, index: UInt16(piece), count: UInt16(count),
                                       chunkSize: UInt16(chunk), totalLength: UInt32(frameLength), virtio: header)
                            .store(p + Sleeve.headerSize)
                        (p + Sleeve.headerSize + FragmentHeader.size).copyMemory(from: frame + offset, byteCount: size)
                        bytes += stamp(p, bodyLength: FragmentHeader.size + size, kind: .fragment, session: session, own: own, keys: keys).length
                    }
                    slot.pointee.trainBytes = bytes
                    slot.pointee.stride = stride
                    slot.pointee.session = session
                    slot.pointee.key = keys.tx
                    slot.pointee.address = address
                    handOver(pipeline)
                    index += inThisTrain
                }
            }

            func route(_ i: Int, superFrame: Bool = false, _ visit: (SleeveSession, UInt16) -> Void) {
                let frame = UnsafeRawPointer(slab + i * Self.txSlotSize + Self.frameOffset)
                // A remote peer's frame that the fast datapath delivered to the bridge, which
                // passed it on to us too: its senders already took care of it.
                let owners = macs.owners(ofFrame: frame)
                if fastdpAttached, let owner = owners.source, owner != own { return }
                let multicast = frame.load(as: UInt8.self) & 1 != 0
                if !multicast, let peer = owners.destination, peer != own {
                    guard let session = table.route(to: peer) else { return }
                    // The bridge still sends this peer's MACs our way (it learned them while the
                    // link was on sleeve): pass the frame to the fast datapath, so the peer's
                    // bridge, then ours, learn the new way. Super-frames stay on sleeve (the
                    // peer takes both), a moment later they follow.
                    if fastdpAttached, !superFrame, session.fastdp.selected.load(ordering: .relaxed),
                       handToFastdp(UnsafeRawPointer(frame), lengths[i], source: own, destination: peer, via: session) {
                        return
                    }
                    visit(session, peer)
                    return
                }
                // Broadcast, multicast and unknown unicast: along our own broadcast tree, except
                // to neighbours on fastdp (the bridge gave the fast datapath its own copy).
                for hop in table.broadcast[Int(own)] {
                    if let session = table.session(hop), !session.fastdp.selected.load(ordering: .relaxed) {
                        visit(session, Sleeve.broadcastShortId)
                    }
                }
            }

            for i in 0..<n {
                let frame = slab + i * Self.txSlotSize + Self.frameOffset
                let header = VirtioNetHeader.loadNative(frame - VirtioNetHeader.size)
                if header.isSuperFrame {
                    route(i, superFrame: true) { session, destination in emitSuperFrame(i, header, to: session, destination: destination) }
                    continue
                }
                // A single frame with a partial checksum: finish it here, so the peer can hand it
                // to its kernel as an ordinary frame.
                if header.flags & VirtioNetHeader.needsChecksum != 0,
                   !InternetChecksum.complete(frame: frame, length: lengths[i], start: Int(header.checksumStart), offset: Int(header.checksumOffset)) {
                    SleeveCounters.add(stray.dropMalformed, 1)
                    continue
                }
                route(i) { session, destination in emit(i, lengths[i], to: session, destination: destination) }
            }
            sealPending()
            ship(&out, pipeline)
        }
    }

    // MARK: UDP → TAP

    /// Pieces of super-frames being put back together: a few slots shared by all peers, the
    /// oldest reused first, so memory stays bounded whatever arrives.
    struct Reassembly {
        static let slots = 8
        static let slotSize = VirtioNetHeader.size + 65536
        let buffer: UnsafeMutableRawPointer
        var source = [UInt16](repeating: 0, count: slots)
        var frameId = [UInt32](repeating: 0, count: slots)
        var received = [Int](repeating: 0, count: slots)
        var count = [Int](repeating: 0, count: slots)
        var seen = [(UInt64, UInt64)](repeating: (0, 0), count: slots)
        var inUse = [Bool](repeating: false, count: slots)
        var age = [UInt64](repeating: 0, count: slots)
        var clock: UInt64 = 0

        init() { buffer = .allocate(byteCount: Self.slots * Self.slotSize, alignment: 64) }

        /// Adds a piece; returns the slot when the super-frame is complete.
        mutating func add(_ h: FragmentHeader, chunk: UnsafeRawPointer, length: Int) -> Int? {
            clock += 1
            var slot = (0..<Self.slots).first { inUse[$0] && source[$0] == h.source && frameId[$0] == h.frameId } ?? -1
            if slot < 0 {
                slot = (0..<Self.slots).first { !inUse[$0] } ?? (0..<Self.slots).min { age[$0] < age[$1] }!
                inUse[slot] = true
                source[slot] = h.source
                frameId[slot] = h.frameId
                received[slot] = 0
                count[slot] = Int(h.count)
                seen[slot] = (0, 0)
                h.virtio.storeNative(buffer + slot * Self.slotSize)
            }
            age[slot] = clock
            guard count[slot] == Int(h.count) else { return nil }
            let bit = Int(h.index)
            let mask: UInt64 = 1 << UInt64(bit & 63)
            if bit < 64 {
                guard seen[slot].0 & mask == 0 else { return nil }
                seen[slot].0 |= mask
            } else {
                guard seen[slot].1 & mask == 0 else { return nil }
                seen[slot].1 |= mask
            }
            (buffer + slot * Self.slotSize + VirtioNetHeader.size + h.offset).copyMemory(from: chunk, byteCount: length)
            received[slot] += 1
            guard received[slot] == count[slot] else { return nil }
            inUse[slot] = false
            return slot
        }
    }

    /// Receives per recvmmsg: each buffer may hold a GRO train of up to 64 KiB.
    static let receiveBatch = 16

    private func udpLoop() {
        let packetSlot = (max(maxPayload, 2048) + 63) & ~63
        let receiveSlot = 65536
        // Owned by this thread: received trains (opened in place, packet by packet), then relay packets.
        let slab = UnsafeMutableRawPointer.allocate(byteCount: Self.receiveBatch * receiveSlot + Self.batch * packetSlot, alignment: 64)
        defer { slab.deallocate() }
        let relaySlab = slab + Self.receiveBatch * receiveSlot
        var reassembly = Reassembly()
        defer { reassembly.buffer.deallocate() }
        var pointers = (0..<Self.receiveBatch).map { Optional(slab + $0 * receiveSlot) }
        var lengths = [Int](repeating: 0, count: Self.receiveBatch)
        var segments = [UInt16](repeating: 0, count: Self.receiveBatch)
        var addresses = [sockaddr_in](repeating: sockaddr_in(), count: Self.receiveBatch)
        var out = OutBatch(capacity: 2 * Self.batch)
        var pfd = pollfd(fd: udpFD, events: Int16(POLLIN), revents: 0)
        // A plain frame goes to the TAP behind an all-zero virtio header (nothing to offload).
        var zeroHeader = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        var iov = [iovec(), iovec()]
        // Owned by this thread: a frame record holding an ICMP too-big answer or an IPv4
        // fragment, built here and copied into a relay slot by `relay`.
        let answer = UnsafeMutableRawPointer.allocate(byteCount: max(packetSlot, Sleeve.frameHeaderSize + ICMPTooBig.maxReply), alignment: 16)
        defer { answer.deallocate() }

        func deliver(_ frame: UnsafeRawPointer, _ length: Int) {
            zeroHeader.withUnsafeMutableBytes { z in
                iov[0] = iovec(iov_base: z.baseAddress, iov_len: VirtioNetHeader.size)
                iov[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: frame), iov_len: length)
                _ = writev(tapFD, &iov, 2)
            }
        }

        while !stopping.load(ordering: .relaxed) {
            pfd.revents = 0
            guard poll(&pfd, 1, 500) > 0 else { continue }
            for i in 0..<Self.receiveBatch { lengths[i] = receiveSlot }
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
            let table = currentTable
            let own = table.ownShortId
            let now = Self.monotonicNanos()
            var relays = 0

            /// Queues a packet, sending the queue first when it is full.
            func enqueue(_ p: UnsafeMutableRawPointer, _ length: Int, _ session: SleeveSession) {
                if out.isFull {
                    flush(&out)
                    relays = 0
                }
                out.add(p, length, session)
            }

            /// Re-seals a record (a frame with its record header, or a piece) towards the next hop.
            /// Returns false when it does not fit that hop (dropped and counted).
            @discardableResult
            func relay(_ body: UnsafeRawPointer, _ bodyLength: Int, kind: SleeveKind, frameBytes: Int, via session: SleeveSession) -> Bool {
                if relays == Self.batch {
                    flush(&out)
                    relays = 0
                }
                guard Sleeve.headerSize + bodyLength + Sleeve.tagSize <= min(packetSlot, session.pathPayload.load(ordering: .relaxed)) else {
                    SleeveCounters.add(session.counters.dropTooBig, 1)
                    return false
                }
                let p = relaySlab + relays * packetSlot
                relays += 1
                (p + Sleeve.headerSize).copyMemory(from: body, byteCount: bodyLength)
                let total = finish(p, bodyLength: bodyLength, kind: kind, session: session, own: own)
                SleeveCounters.add(session.counters.txFrames, 1)
                SleeveCounters.add(session.counters.txBytes, UInt64(frameBytes))
                enqueue(p, total, session)
                return true
            }

            /// A relayed frame (or a super-frame's first piece, which starts with its headers:
            /// `whole` false) did not fit the next hop `next` (docs/protocol.md §5.4). An IPv4
            /// packet without DF goes on in IPv4 fragments that fit the route onward; otherwise
            /// the sender's workload gets an ICMP too-big naming that route's MTU, in a record from
            /// the frame's destination peer back to its source peer, so it reaches the workload
            /// like any frame. A flooded frame (destination 0xFFFF) is cut for, or answered
            /// about, the one child it did not fit; the answer's source is then 0xFFFF too.
            func tooBig(_ frame: UnsafeRawPointer, _ length: Int, whole: Bool, source: UInt16, destination: UInt16, next: SleeveSession) {
                let mtu = Sleeve.overlayMTU(payload: table.payloadLimit(to: destination, via: next))
                let pieces = whole ? IPv4Fragments.count(frame: frame, length: length, mtu: mtu) : 0
                for k in 0..<pieces {
                    let n = IPv4Fragments.write(frame: frame, length: length, mtu: mtu, index: k, into: answer + Sleeve.frameHeaderSize)
                    Sleeve.writeFrameHeader(length: n, source: source, destination: destination, to: answer)
                    relay(answer, Sleeve.frameHeaderSize + n, kind: .data, frameBytes: n, via: next)
                }
                if pieces > 0 { return }
                let n = ICMPTooBig.build(frame: frame, length: length, mtu: mtu, into: answer + Sleeve.frameHeaderSize)
                guard n > 0, let back = table.route(to: source) else { return }
                Sleeve.writeFrameHeader(length: n, source: destination, destination: source, to: answer)
                if relay(answer, Sleeve.frameHeaderSize + n, kind: .data, frameBytes: n, via: back) {
                    SleeveCounters.add(next.counters.txTooBig, 1)
                }
            }

            for i in 0..<Int(n) {
              // A GRO train holds datagrams of `segments[i]` bytes each (the last may be shorter).
              let train = slab + i * receiveSlot
              let step = segments[i] == 0 ? max(lengths[i], 1) : Int(segments[i])
              var trainOffset = 0
              while trainOffset < lengths[i] {
                let p = train + trainOffset
                let length = min(step, lengths[i] - trainOffset)
                trainOffset += step
                guard let header = Sleeve.readHeader(p, length: length), header.receiver == own,
                      let session = table.session(header.sender) else {
                    SleeveCounters.add(stray.dropMalformed, 1)
                    continue
                }
                let bodyLength: Int
                if header.sealed {
                    guard let key = session.keys.receiveKey(epoch: header.epoch) else {
                        SleeveCounters.add(session.counters.dropBadTag, 1)
                        continue
                    }
                    // Tag first, so a tampered packet is counted as such whatever its counter;
                    // the window moves only for authentic packets.
                    bodyLength = key.open(p, headerLength: Sleeve.headerSize, length: length, counter: header.counter)
                    guard bodyLength >= 0 else {
                        SleeveCounters.add(session.counters.dropBadTag, 1)
                        continue
                    }
                    guard session.commitReplay(epoch: header.epoch, counter: header.counter) else {
                        SleeveCounters.add(session.counters.dropReplay, 1)
                        continue
                    }
                } else {
                    // A clear packet on an encrypted link is as good as a forged one.
                    guard !session.encrypted else {
                        SleeveCounters.add(session.counters.dropBadTag, 1)
                        continue
                    }
                    guard session.commitReplay(epoch: header.epoch, counter: header.counter) else {
                        SleeveCounters.add(session.counters.dropReplay, 1)
                        continue
                    }
                    bodyLength = length - Sleeve.headerSize
                }
                session.learn(addresses[i])
                session.lastReceive.store(now, ordering: .relaxed)
                if header.kind == .data || header.kind == .fragment { SleeveCounters.add(session.counters.rxPackets, 1) }
                let body = p + Sleeve.headerSize

                switch header.kind {
                case .heartbeat:
                    // Answer with the same body; the buffer is ours to reuse.
                    let total = finish(p, bodyLength: bodyLength, kind: .heartbeatAck, session: session, own: own)
                    enqueue(p, total, session)
                case .heartbeatAck:
                    session.lastHeartbeatAck.store(now, ordering: .relaxed)
                case .pmtuProbe:
                    // Acknowledge with the size that arrived, in a small packet.
                    (p + Sleeve.headerSize).storeBytes(of: UInt16(length).bigEndian, as: UInt16.self)
                    let total = finish(p, bodyLength: 2, kind: .pmtuAck, session: session, own: own)
                    enqueue(p, total, session)
                case .pmtuAck:
                    guard bodyLength >= 2 else { break }
                    let size = Int(UInt16(bigEndian: body.loadUnaligned(as: UInt16.self)))
                    if size <= maxPayload && size > session.probeBest.load(ordering: .relaxed) {
                        session.probeBest.store(size, ordering: .relaxed)
                    }
                case .fragment:
                    guard let piece = FragmentHeader.load(body, bodyLength: bodyLength), piece.source != own else {
                        SleeveCounters.add(session.counters.dropMalformed, 1)
                        break
                    }
                    let chunk = UnsafeRawPointer(body + FragmentHeader.size)
                    let chunkLength = bodyLength - FragmentHeader.size
                    if piece.destination == own || piece.destination == Sleeve.broadcastShortId,
                       let slot = reassembly.add(piece, chunk: chunk, length: chunkLength) {
                        let frame = reassembly.buffer + slot * Reassembly.slotSize
                        macs.learn(MACTable.key(frame + VirtioNetHeader.size + 6), peer: piece.source)
                        SleeveCounters.add(session.counters.rxFrames, 1)
                        SleeveCounters.add(session.counters.rxBytes, UInt64(piece.totalLength))
                        _ = write(tapFD, frame, VirtioNetHeader.size + Int(piece.totalLength))
                    }
                    if piece.destination == Sleeve.broadcastShortId, Int(piece.source) < ForwardingTable.slots {
                        for hop in table.broadcast[Int(piece.source)] where hop != header.sender {
                            if let next = table.session(hop), !relay(body, bodyLength, kind: .fragment, frameBytes: chunkLength, via: next),
                               piece.index == 0 {
                                tooBig(chunk, chunkLength, whole: false, source: piece.source, destination: piece.destination, next: next)
                            }
                        }
                    } else if piece.destination != own, let next = table.route(to: piece.destination), next !== session,
                              !relay(body, bodyLength, kind: .fragment, frameBytes: chunkLength, via: next), piece.index == 0 {
                        tooBig(chunk, chunkLength, whole: false, source: piece.source, destination: piece.destination, next: next)
                    }
                case .data:
                    let ok = Sleeve.forEachFrame(in: body, length: bodyLength) { record in
                        let frame = UnsafeRawPointer(body + record.offset)
                        guard record.source != own else { return }
                        if record.source != Sleeve.broadcastShortId {
                            macs.learn(MACTable.key(frame + 6), peer: record.source)
                        }
                        SleeveCounters.add(session.counters.rxFrames, 1)
                        SleeveCounters.add(session.counters.rxBytes, UInt64(record.length))
                        let recordStart = UnsafeRawPointer(body + record.offset - Sleeve.frameHeaderSize)
                        let recordLength = Sleeve.frameHeaderSize + record.length
                        if record.destination == own {
                            deliver(frame, record.length)
                        } else if record.destination == Sleeve.broadcastShortId {
                            deliver(frame, record.length)
                            if Int(record.source) < ForwardingTable.slots {
                                for hop in table.broadcast[Int(record.source)] where hop != header.sender {
                                    if let next = table.session(hop), !relay(recordStart, recordLength, kind: .data, frameBytes: record.length, via: next) {
                                        tooBig(frame, record.length, whole: true, source: record.source, destination: record.destination, next: next)
                                    }
                                }
                            }
                        } else if let next = table.route(to: record.destination), next !== session,
                                  !relay(recordStart, recordLength, kind: .data, frameBytes: record.length, via: next) {
                            tooBig(frame, record.length, whole: true, source: record.source, destination: record.destination, next: next)
                        }
                    }
                    if !ok { SleeveCounters.add(session.counters.dropMalformed, 1) }
                }
              }
            }
            flush(&out)
        }
    }
}
