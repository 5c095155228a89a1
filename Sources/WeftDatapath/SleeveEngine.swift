// The sleeve data plane (docs/design.md §3): the engine's shared state and what every thread uses
// to build and send packets. The rest is one file per direction and concern:
//   SleeveEngine+TX.swift         TAP → UDP, stage 1 (thread weft-tap-rx, `tapLoop`)
//   SleeveEngine+Pipeline.swift   TAP → UDP, stage 2 (`WEFT_PIPELINE=on`: thread weft-udp-tx)
//   SleeveEngine+RX.swift         UDP → TAP and relaying (thread weft-udp-rx, `udpLoop`)
//   SleeveEngine+Reassembly.swift super-frames put back together from their pieces
//   SleeveEngine+Probes.swift     heartbeats and path-MTU probes (control plane)
//   SleeveEngine+Handoff.swift    frames crossing to and from the fast datapath
//   SleeveEngine+Socket.swift     the UDP socket (both families) and batched sends
//   UnderlayAddress.swift         a peer address of either family as the socket takes it
// All work in batches over preallocated slabs; nothing on the packet path allocates, throws or logs.
import CWeftShims
import Foundation
import Synchronization
import WeftCrypto
import WeftMesh
import WeftWire

public struct DatapathError: Error, CustomStringConvertible {
    public let description: String
    init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
}

public final class SleeveEngine: @unchecked Sendable {  // threads own their slabs; shared state is atomic or locked
    public let port: Int
    let udpFD: Int32
    let tapFD: Int32
    /// Largest UDP payload this router sends: the underlay MTU less IPv4 and UDP headers (an
    /// IPv6 link's is 20 less: `SleeveSession.linkPayload`).
    public let maxPayload: Int
    public let underlayMTU: Int
    /// AF_INET6 for the dual-stack socket, AF_INET where the host has no IPv6.
    public let socketFamily: Int32
    /// The forwarding and MAC tables, shared with the fast datapath (Forwarding.swift).
    let forwarding: Forwarding
    /// Drops that cannot be charged to a connection (unknown sender, not for us, truncated).
    public let stray = SleeveCounters()
    let stopping = Atomic<Bool>(false)
    /// UDP GSO for the pieces of super-frames; turned off for good if the kernel refuses it.
    let gsoEnabled: Atomic<Bool>
    private let finished = DispatchGroup()
    /// Scratch for heartbeats sent from the control plane; guarded by its lock.
    let heartbeatBuffer = Mutex<[UInt8]>([UInt8](repeating: 0, count: 64))
    /// Frames handed over by the fast datapath's miss thread: one at a time, sealed in place.
    let handoffBuffer = Mutex<[UInt8]>([UInt8](repeating: 0, count: 65536 + 64))
    /// Where a hand-off too big for its route is cut into fragments or answered (`tooBig`).
    let handoffScratch: Mutex<[UInt8]>
    /// Scratch for path-MTU probes, as large as the largest probe.
    let probeBuffer: Mutex<[UInt8]>

    static let batch = Int(WEFT_BATCH_MAX)
    static let frameOffset = Sleeve.headerSize + Sleeve.frameHeaderSize

    public init(forwarding: Forwarding, tapFD: Int32, port: Int, underlayMTU: Int) throws {
        self.forwarding = forwarding
        self.tapFD = tapFD
        self.port = port
        self.underlayMTU = underlayMTU
        self.maxPayload = underlayMTU - UnderlayFamily.ipv4.udpHeaders
        self.probeBuffer = Mutex([UInt8](repeating: 0, count: max(underlayMTU, 576)))
        self.handoffScratch = Mutex([UInt8](repeating: 0, count: max(underlayMTU, VirtioNetHeader.size + ICMPTooBig.maxReply)))
        (udpFD, socketFamily) = try SleeveSocket.open(port: port)
        gsoEnabled = Atomic(weft_udp_gso_supported(udpFD) != 0 && ProcessInfo.processInfo.environment["WEFT_NO_UDP_GSO"] == nil)
        let flags = fcntl(tapFD, F_GETFL)
        _ = fcntl(tapFD, F_SETFL, flags | O_NONBLOCK)
    }

    public func start() {
        forwarding.attach(sleeve: self)
        let pipeline = SendPipeline(threaded: Self.pipelineThreaded)
        var loops: [(String, @Sendable () -> Void)] = [("weft-tap-rx", { self.tapLoop(pipeline) }), ("weft-udp-rx", udpLoop)]
        if pipeline.threaded { loops.append(("weft-udp-tx", { self.sendLoop(pipeline) })) }
        for (name, body) in loops { DataPlaneThread.start(name, finished: finished, body) }
    }

    /// Stops the threads (they notice within a poll interval) and closes the UDP socket.
    public func stop() {
        forwarding.attach(sleeve: nil)
        stopping.store(true, ordering: .relaxed)
        _ = finished.wait(timeout: .now() + 3)
        close(udpFD)
    }

    /// `ip`:`port` as this engine's socket takes it; nil for an IPv6 peer when the host has no IPv6.
    public func address(ip: IPAddress, port: UInt16) -> UnderlayAddress? {
        UnderlayAddress(ip: ip, port: port, socketFamily: socketFamily)
    }

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

    /// Drops an oversize frame for `session` and tells its sender, through the bridge, the MTU
    /// that fits the whole route (a UDP payload of `limit`). `scratch` holds a virtio header
    /// (zero) and `ICMPTooBig.maxReply` bytes after it, and belongs to the calling thread.
    func tooBig(_ frame: UnsafeRawPointer, _ length: Int, limit: Int, session: SleeveSession, scratch: UnsafeMutableRawPointer) {
        SleeveCounters.add(session.counters.dropTooBig, 1)
        let n = ICMPTooBig.build(frame: frame, length: length, mtu: Sleeve.overlayMTU(payload: limit), into: scratch + VirtioNetHeader.size)
        if n > 0, write(tapFD, scratch, VirtioNetHeader.size + n) > 0 { SleeveCounters.add(session.counters.txTooBig, 1) }
    }
}
