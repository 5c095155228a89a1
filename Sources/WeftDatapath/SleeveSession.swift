// The data-plane state of one directly connected peer. Created by the router when a gossip link
// is established, read by the data-plane threads through a ForwardingTable snapshot.
import Glibc
import Synchronization
import WeftCrypto
import WeftWire

/// Per-connection counters of `weft status connections` (`counters`). Written by data-plane
/// threads with relaxed atomics; read by the control plane.
public final class SleeveCounters: Sendable {
    public let txFrames = Atomic<UInt64>(0)
    public let rxFrames = Atomic<UInt64>(0)
    public let txBytes = Atomic<UInt64>(0)
    public let rxBytes = Atomic<UInt64>(0)
    public let dropBadTag = Atomic<UInt64>(0)
    public let dropReplay = Atomic<UInt64>(0)
    public let dropMalformed = Atomic<UInt64>(0)
    public let dropTooBig = Atomic<UInt64>(0)

    public init() {}

    @inline(__always)
    static func add(_ counter: borrowing Atomic<UInt64>, _ value: UInt64) {
        counter.wrappingAdd(value, ordering: .relaxed)
    }

    public struct Snapshot: Codable, Sendable, Equatable {
        public var txFrames, rxFrames, txBytes, rxBytes, dropBadTag, dropReplay, dropMalformed, dropTooBig: UInt64
    }

    public func snapshot() -> Snapshot {
        Snapshot(txFrames: txFrames.load(ordering: .relaxed), rxFrames: rxFrames.load(ordering: .relaxed),
                 txBytes: txBytes.load(ordering: .relaxed), rxBytes: rxBytes.load(ordering: .relaxed),
                 dropBadTag: dropBadTag.load(ordering: .relaxed), dropReplay: dropReplay.load(ordering: .relaxed),
                 dropMalformed: dropMalformed.load(ordering: .relaxed), dropTooBig: dropTooBig.load(ordering: .relaxed))
    }
}

public final class SleeveSession: @unchecked Sendable {  // rx state: the UDP thread only; the rest atomic or immutable
    /// The peer's short id can move when gossip resolves a collision; the router updates it.
    private let shortId: Atomic<UInt16>
    /// nil keys: the link is trusted or has no password, packets travel in clear.
    public let txKey: PacketKey?
    public let rxKey: PacketKey?
    public let epoch: UInt8
    public let counters = SleeveCounters()
    private let txCounter = Atomic<UInt64>(0)
    /// Monotonic nanoseconds of the last authenticated heartbeat answer; 0 for never.
    let lastHeartbeatAck = Atomic<Int64>(0)
    let lastReceive = Atomic<Int64>(0)
    /// Where the peer's sleeve packets come from: learned from authenticated packets (NAT).
    private let address: Mutex<sockaddr_in>
    /// Largest UDP payload that reaches this peer: starts at what our underlay allows and is
    /// lowered by path-MTU probing (docs/protocol.md §5.4).
    let pathPayload: Atomic<Int>
    /// Largest probe the peer acknowledged in the current probing round; 0 for none yet.
    let probeBest = Atomic<Int>(0)
    /// Only the UDP receive thread touches the replay window.
    var replay = ReplayWindow()

    public init(peerShortId: UInt16, txKey: PacketKey?, rxKey: PacketKey?, epoch: UInt8, address: sockaddr_in, maxPayload: Int) {
        self.shortId = Atomic(peerShortId)
        self.pathPayload = Atomic(maxPayload)
        self.txKey = txKey
        self.rxKey = rxKey
        self.epoch = epoch
        self.address = Mutex(address)
    }

    public var peerShortId: UInt16 {
        get { shortId.load(ordering: .relaxed) }
        set { shortId.store(newValue, ordering: .relaxed) }
    }

    public var encrypted: Bool { txKey != nil }

    /// The IP MTU a workload can use towards this peer: the path payload less sleeve overhead.
    public var pathMTU: Int { pathPayload.load(ordering: .relaxed) - Sleeve.overheadIPv4 + Sleeve.ipv4Overhead }

    /// Ends a probing round: the path payload becomes the largest acknowledged probe, when any
    /// came back (a round with no answer at all says nothing about size; heartbeats cover that).
    public func finishProbeRound() {
        let best = probeBest.exchange(0, ordering: .relaxed)
        if best > 0 { pathPayload.store(best, ordering: .relaxed) }
    }
    public var cipher: DataCipher? { txKey?.cipher }

    @inline(__always)
    func nextCounter() -> UInt64 { txCounter.wrappingAdd(1, ordering: .relaxed).oldValue }

    @inline(__always)
    var remoteAddress: sockaddr_in { address.withLock { $0 } }

    /// Moves the peer's address when an authenticated packet arrives from elsewhere.
    @inline(__always)
    func learn(_ source: sockaddr_in) {
        address.withLock { current in
            if current.sin_addr.s_addr != source.sin_addr.s_addr || current.sin_port != source.sin_port { current = source }
        }
    }

    public var remoteAddressText: String {
        let a = remoteAddress
        let ip = UInt32(bigEndian: a.sin_addr.s_addr)
        return "\(ip >> 24).\((ip >> 16) & 0xFF).\((ip >> 8) & 0xFF).\(ip & 0xFF):\(UInt16(bigEndian: a.sin_port))"
    }

    /// Seconds since the last heartbeat answer, nil when none came yet.
    public func secondsSinceHeartbeatAck(now: Int64) -> Double? {
        let last = lastHeartbeatAck.load(ordering: .relaxed)
        return last == 0 ? nil : Double(now - last) / 1e9
    }

    public static func address(ip: String, port: UInt16) -> sockaddr_in? {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        guard inet_pton(AF_INET, ip, &a.sin_addr) == 1 else { return nil }
        return a
    }
}

/// What the data plane forwards by: an immutable snapshot the router replaces whenever links,
/// routes or keys change. Indexed by 12-bit short id, so a lookup is an array access.
public final class ForwardingTable: Sendable {
    public static let slots = 4096
    public let ownShortId: UInt16
    let sessions: [SleeveSession?]
    /// Destination short id → the neighbour's short id to send through; 0xFFFF when unreachable.
    let nextHop: [UInt16]
    /// Source short id → neighbours that a broadcast from that source is passed on to.
    let broadcast: [[UInt16]]
    /// Whether a short id belongs to a live peer (MAC entries of others are ignored).
    public let version: UInt64

    public init(ownShortId: UInt16, sessions: [UInt16: SleeveSession], nextHop: [UInt16: UInt16], broadcast: [UInt16: [UInt16]], version: UInt64) {
        self.ownShortId = ownShortId
        var s = [SleeveSession?](repeating: nil, count: Self.slots)
        for (id, session) in sessions where Int(id) < Self.slots { s[Int(id)] = session }
        var n = [UInt16](repeating: 0xFFFF, count: Self.slots)
        for (destination, hop) in nextHop where Int(destination) < Self.slots { n[Int(destination)] = hop }
        var b = [[UInt16]](repeating: [], count: Self.slots)
        for (source, hops) in broadcast where Int(source) < Self.slots { b[Int(source)] = hops }
        self.sessions = s
        self.nextHop = n
        self.broadcast = b
        self.version = version
    }

    public static let empty = ForwardingTable(ownShortId: 0xFFFF, sessions: [:], nextHop: [:], broadcast: [:], version: 0)

    @inline(__always)
    func session(_ shortId: UInt16) -> SleeveSession? {
        Int(shortId) < Self.slots ? sessions[Int(shortId)] : nil
    }

    /// The neighbour session that frames for `destination` leave through.
    @inline(__always)
    func route(to destination: UInt16) -> SleeveSession? {
        guard Int(destination) < Self.slots else { return nil }
        let hop = nextHop[Int(destination)]
        return hop == 0xFFFF ? nil : session(hop)
    }
}
