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
    /// ICMP too-big answers sent to a workload for frames that did not fit this connection
    /// (docs/protocol.md §5.4): at the origin and, for relayed frames, at the relay.
    public let txTooBig = Atomic<UInt64>(0)
    /// Data packets (DATA and FRAGMENT) sent and received: fewer than frames when several
    /// frames share a packet, more when super-frames travel in pieces.
    public let txPackets = Atomic<UInt64>(0)
    public let rxPackets = Atomic<UInt64>(0)

    public init() {}

    @inline(__always)
    static func add(_ counter: borrowing Atomic<UInt64>, _ value: UInt64) {
        counter.wrappingAdd(value, ordering: .relaxed)
    }

    /// One frame of `bytes` sent to (or through) this connection.
    @inline(__always)
    func frameSent(bytes: Int) {
        Self.add(txFrames, 1)
        Self.add(txBytes, UInt64(bytes))
    }

    /// One frame of `bytes` received from this connection.
    @inline(__always)
    func frameReceived(bytes: Int) {
        Self.add(rxFrames, 1)
        Self.add(rxBytes, UInt64(bytes))
    }

    public struct Snapshot: Codable, Sendable, Equatable {
        public var txFrames, rxFrames, txBytes, rxBytes, dropBadTag, dropReplay, dropMalformed, dropTooBig: UInt64
        public var txPackets, rxPackets: UInt64
        public var txTooBig: UInt64
    }

    public func snapshot() -> Snapshot {
        Snapshot(txFrames: txFrames.load(ordering: .relaxed), rxFrames: rxFrames.load(ordering: .relaxed),
                 txBytes: txBytes.load(ordering: .relaxed), rxBytes: rxBytes.load(ordering: .relaxed),
                 dropBadTag: dropBadTag.load(ordering: .relaxed), dropReplay: dropReplay.load(ordering: .relaxed),
                 dropMalformed: dropMalformed.load(ordering: .relaxed), dropTooBig: dropTooBig.load(ordering: .relaxed),
                 txPackets: txPackets.load(ordering: .relaxed), rxPackets: rxPackets.load(ordering: .relaxed),
                 txTooBig: txTooBig.load(ordering: .relaxed))
    }
}

/// The keys of one session at one moment: the epoch and key packets are sent with, and the
/// (at most two) epochs accepted on receive — the new one as soon as the peer may use it, the
/// previous one as a grace period for packets already in flight. Immutable; replaced whole.
public final class SessionKeys: Sendable {
    public let txEpoch: UInt8
    /// nil: the link is trusted or has no password, packets travel in clear.
    public let tx: PacketKey?
    let rx: [(epoch: UInt8, key: PacketKey)]

    public init(txEpoch: UInt8, tx: PacketKey?, rx: [(epoch: UInt8, key: PacketKey)]) {
        self.txEpoch = txEpoch
        self.tx = tx
        self.rx = rx
    }

    @inline(__always)
    func receiveKey(epoch: UInt8) -> PacketKey? {
        for entry in rx where entry.epoch == epoch { return entry.key }
        return nil
    }

    /// Accepts `epoch` from now on, keeping the epoch packets are currently sent with.
    public func receiving(epoch: UInt8, key: PacketKey?) -> SessionKeys {
        guard let key else { return self }
        let keep = rx.filter { $0.epoch == txEpoch && $0.epoch != epoch }
        return SessionKeys(txEpoch: txEpoch, tx: tx, rx: [(epoch, key)] + keep)
    }

    /// Sends with `epoch` from now on; receive keys are unchanged (the old epoch stays as grace).
    public func sending(epoch: UInt8, key: PacketKey?) -> SessionKeys {
        SessionKeys(txEpoch: epoch, tx: key ?? tx, rx: rx)
    }
}

public final class SleeveSession: @unchecked Sendable {  // rx state: the UDP thread only; the rest atomic or immutable
    /// The peer's short id can move when gossip resolves a collision; the router updates it.
    private let shortId: Atomic<UInt16>
    private let keyState: Mutex<SessionKeys>
    public let encrypted: Bool
    public let counters = SleeveCounters()
    /// This neighbour's side of the fast datapath (mode, tunnel port, heartbeats).
    public let fastdp = FastdpPeerState()
    private let txCounter = Atomic<UInt64>(0)
    /// Monotonic nanoseconds of the last authenticated heartbeat answer; 0 for never.
    let lastHeartbeatAck = Atomic<Int64>(0)
    let lastReceive = Atomic<Int64>(0)
    /// Where the peer's sleeve packets come from: learned from authenticated packets (NAT).
    private let address: Mutex<UnderlayAddress>
    /// This host's underlay MTU: with the family of the peer's address, what `linkPayload` is.
    private let underlayMTU: Int
    /// Largest UDP payload that reaches this peer: starts at `linkPayload` and is lowered by
    /// path-MTU probing (docs/protocol.md §5.4).
    let pathPayload: Atomic<Int>
    /// Largest probe the peer acknowledged in the current probing round; 0 for none yet.
    let probeBest = Atomic<Int>(0)
    /// Replay windows by epoch parity (only two consecutive epochs are ever accepted), with the
    /// epoch each one belongs to. Only the UDP receive thread touches them.
    private var windows = [ReplayWindow(), ReplayWindow()]
    private var windowEpochs: [Int] = [-1, -1]

    /// `underlayMTU`: this host's; the link's payload follows from the family of `address`.
    public init(peerShortId: UInt16, keys: SessionKeys, address: UnderlayAddress, underlayMTU: Int) {
        self.shortId = Atomic(peerShortId)
        self.keyState = Mutex(keys)
        self.encrypted = keys.tx != nil
        self.address = Mutex(address)
        self.underlayMTU = underlayMTU
        self.pathPayload = Atomic(underlayMTU - address.family.udpHeaders)
    }

    public var peerShortId: UInt16 {
        get { shortId.load(ordering: .relaxed) }
        set { shortId.store(newValue, ordering: .relaxed) }
    }

    @inline(__always)
    public var keys: SessionKeys { keyState.withLock { $0 } }

    /// Replaces the keys (rekeying); the data plane picks them up with its next packet.
    public func update(_ change: (SessionKeys) -> SessionKeys) {
        keyState.withLock { $0 = change($0) }
    }

    public var cipher: DataCipher? { keys.tx?.cipher }
    public var txCounterValue: UInt64 { txCounter.load(ordering: .relaxed) }

    /// Accepts `counter` in `epoch`'s window if fresh (UDP thread only; after the tag verified).
    @inline(__always)
    func commitReplay(epoch: UInt8, counter: UInt64) -> Bool {
        let slot = Int(epoch & 1)
        if windowEpochs[slot] != Int(epoch) {
            windowEpochs[slot] = Int(epoch)
            windows[slot] = ReplayWindow()
        }
        return windows[slot].commit(counter)
    }

    /// The largest UDP payload known to reach this peer (path-MTU probing).
    public var pathPayloadBytes: Int { pathPayload.load(ordering: .relaxed) }

    /// The IP MTU a workload can use towards this peer: the path payload less sleeve overhead.
    public var pathMTU: Int { Sleeve.overlayMTU(payload: pathPayload.load(ordering: .relaxed)) }

    /// The MTU this router gossips for the connection (`ConnectionEntry.mtu`), and the
    /// measurement of the last probing round: the control plane's alone (`PathMTU.settle`).
    public var publishedMTU: Int?
    public var lastRoundMTU: Int?

    /// Ends a probing round: the path payload becomes the largest acknowledged probe, when any
    /// came back (a round with no answer at all says nothing about size; heartbeats cover that).
    /// Returns the round's MTU, nil for such a round.
    @discardableResult
    public func finishProbeRound() -> Int? {
        let best = probeBest.exchange(0, ordering: .relaxed)
        guard best > 0 else { return nil }
        pathPayload.store(best, ordering: .relaxed)
        return Sleeve.overlayMTU(payload: best)
    }

    @inline(__always)
    func nextCounter() -> UInt64 { txCounter.wrappingAdd(1, ordering: .relaxed).oldValue }

    @inline(__always)
    public var remoteAddress: UnderlayAddress { address.withLock { $0 } }

    /// Largest UDP payload our underlay allows towards this peer: the underlay MTU less the
    /// outer headers of the family the peer is reached on (IPv4 or IPv6).
    public var linkPayload: Int { underlayMTU - remoteAddress.family.udpHeaders }

    /// Moves the peer's address when an authenticated packet arrives from elsewhere (NAT,
    /// roaming). When the family changes the outer header does too: the path payload restarts
    /// from the new family's limit and the next probing round measures it.
    @inline(__always)
    func learn(_ source: UnderlayAddress) {
        address.withLock { current in
            guard !current.same(as: source) else { return }
            if current.family != source.family { pathPayload.store(underlayMTU - source.family.udpHeaders, ordering: .relaxed) }
            current = source
        }
    }

    public var remoteAddressText: String { remoteAddress.text }

    /// Seconds since the last heartbeat answer, nil when none came yet.
    public func secondsSinceHeartbeatAck(now: Int64) -> Double? {
        let last = lastHeartbeatAck.load(ordering: .relaxed)
        return last == 0 ? nil : Double(now - last) / 1e9
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
    /// Destination short id → the largest UDP payload every hop of the route carries, from the
    /// gossiped per-connection MTUs (WeftMesh PathMTU); Int.max when none is known. The first
    /// hop's live `pathPayload` limits too, so a new probe result counts before the next table.
    let routePayload: [Int]

    public init(ownShortId: UInt16, sessions: [UInt16: SleeveSession], nextHop: [UInt16: UInt16], broadcast: [UInt16: [UInt16]],
                pathMTU: [UInt16: Int] = [:]) {
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
        var r = [Int](repeating: .max, count: Self.slots)
        for (destination, mtu) in pathMTU where Int(destination) < Self.slots { r[Int(destination)] = Sleeve.payload(overlayMTU: mtu) }
        self.routePayload = r
    }

    public static let empty = ForwardingTable(ownShortId: 0xFFFF, sessions: [:], nextHop: [:], broadcast: [:])

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

    /// The largest UDP payload that reaches `destination` through `session` (its next hop):
    /// the first hop's measurement and every later hop's gossiped MTU. A table read, no walk.
    @inline(__always)
    func payloadLimit(to destination: UInt16, via session: SleeveSession) -> Int {
        let first = session.pathPayload.load(ordering: .relaxed)
        return Int(destination) < Self.slots ? min(first, routePayload[Int(destination)]) : first
    }
}
