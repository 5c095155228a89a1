// Topology gossip messages (docs/protocol.md §4): the codec only; merging and routes live in WeftMesh.

/// One connection a peer reports: to whom, at which address, and in which state.
public struct ConnectionEntry: Hashable, Sendable, Codable {
    /// The peer at the other end.
    public var remote: PeerName
    /// `host:port` of the remote's gossip port (IPv6 as `[addr]:port`); at most 255 bytes on the wire.
    public var address: String
    /// The connection completed its handshake.
    public var established: Bool
    /// The reporting peer dialed it.
    public var outbound: Bool
    /// The largest inner IP packet (overlay MTU) the reporting peer's sleeve carries to the
    /// remote, as settled by path-MTU probing; nil until measured (docs/protocol.md §4, §5.4).
    public var mtu: Int?
    /// The reporting peer's data plane on this connection: its mode and whether it encrypts;
    /// nil when not reported (a router from before the field).
    public var dataPlane: DataPlaneReport?
    /// The reporting peer's data plane to the remote does not answer heartbeats although the
    /// connection is up: gossip still crosses it, forwarded traffic does not (docs/protocol.md §4.1).
    public var dataPlaneDown: Bool

    public init(remote: PeerName, address: String, established: Bool, outbound: Bool, mtu: Int? = nil, dataPlane: DataPlaneReport? = nil,
                dataPlaneDown: Bool = false) {
        self.remote = remote
        self.address = address
        self.established = established
        self.outbound = outbound
        self.mtu = mtu
        self.dataPlaneDown = dataPlaneDown
        self.dataPlane = dataPlane
    }
}

/// What a router's data plane does on one of its connections, as it gossips it (docs/protocol.md
/// §4), so that every router can show every link's mode and encryption, not only its own.
public struct DataPlaneReport: Hashable, Sendable, Codable {
    /// The data-plane mode, as `weft status connections` shows it at the reporting end.
    public enum Mode: String, Hashable, Sendable, Codable, CaseIterable {
        /// Established, but no data plane yet (no sleeve session: none made yet, or the peer is
        /// on an address family this host lacks); the link carries gossip only. Named so that
        /// it is never confused with an optional's `.none`.
        case noDataPlane = "none"
        case sleeve
        case fastdp
    }

    public var mode: Mode
    /// The data to the remote is encrypted (a password is set and the link is not trusted both ways).
    public var encrypted: Bool

    public init(mode: Mode, encrypted: Bool) {
        self.mode = mode
        self.encrypted = encrypted
    }
}

/// What a router says about itself; only the named router ever changes its own entry.
public struct PeerEntry: Hashable, Sendable, Codable {
    public var name: PeerName
    /// The router's identity public key (X25519, 32 bytes, docs/protocol.md §4): the name is
    /// derived from it (§1), and receivers pin it (§3.10). `noIdentity` (32 zero bytes) only where a
    /// router has no key (test builds); receivers that check keys refuse such an entry.
    public var identity: [UInt8]
    /// At most 64 bytes of UTF-8 on the wire.
    public var nickname: String
    /// Random per start of the router (protocol.md §1).
    public var uid: UInt64
    /// Incremented by the owner whenever its connections, nickname or short id change.
    public var version: UInt64
    /// 0…4095.
    public var shortId: UInt16
    public var connections: [ConnectionEntry]

    public static let identityBytes = 32
    public static let noIdentity = [UInt8](repeating: 0, count: identityBytes)

    public init(name: PeerName, nickname: String, uid: UInt64, version: UInt64, shortId: UInt16, connections: [ConnectionEntry],
                identity: [UInt8] = PeerEntry.noIdentity) {
        self.name = name
        self.identity = identity
        self.nickname = nickname
        self.uid = uid
        self.version = version
        self.shortId = shortId
        self.connections = connections
    }
}

/// The payload of a GOSSIP message: a list of peer entries.
public struct TopologyUpdate: Equatable, Sendable {
    public static let maxPeers = 4096
    public static let maxConnections = 4096
    public static let maxNicknameBytes = 64
    public static let maxAddressBytes = 255
    public static let maxShortId: UInt16 = 0x0FFF

    /// Smallest encodings, used to reject forged counts before reserving anything:
    /// name 6 + identity key 32 + nickname length 1 + uid 8 + version 8 + short id 2 + count 2.
    static let minPeerEntrySize = 59
    /// name 6 + address length 1 + flags 1.
    static let minConnectionEntrySize = 8

    static let flagEstablished: UInt8 = 0x01
    static let flagOutbound: UInt8 = 0x02
    /// A u16 MTU follows the flags.
    static let flagMTU: UInt8 = 0x04
    /// Bits 3–4: the reporter's data-plane mode, `modeCodes` (0: not reported; then bit 5 means
    /// nothing). Bit 6 is `flagDataPlaneDown`, bit 7 is free; a decoder ignores the bits it does not know.
    static let flagModeShift: UInt8 = 3
    static let flagModeMask: UInt8 = 0x18
    /// Bit 5: the reporter encrypts the connection's data.
    static let flagEncrypted: UInt8 = 0x20
    /// The wire code of each mode in bits 3–4 (docs/protocol.md §4).
    static let modeCodes: [DataPlaneReport.Mode: UInt8] = [.noDataPlane: 1, .sleeve: 2, .fastdp: 3]
    /// Bit 6: `ConnectionEntry.dataPlaneDown`; routers that predate it ignore the bit.
    static let flagDataPlaneDown: UInt8 = 0x40
    /// The smallest MTU an entry may carry: IPv4's minimum (RFC 791).
    public static let minMTU = 68

    public var peers: [PeerEntry]

    public init(peers: [PeerEntry]) { self.peers = peers }

    /// Encodes per protocol.md §4. Beyond the caps, entries are dropped (only the first 4096 peers
    /// and the first 4096 connections of each are written) and strings are cut at a UTF-8 boundary
    /// (nickname 64 bytes, address 255), so the result always decodes. A short id above 4095 is
    /// written as is and is then rejected by the decoder: keeping it in range is the owner's job.
    /// An identity that is not 32 bytes is written as 32 zero bytes (`noIdentity`), which
    /// receivers refuse: the field's size never depends on the value.
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 2 + peers.count * 64)
        let written = peers.prefix(Self.maxPeers)
        w.u16(UInt16(written.count))
        for peer in written {
            w.peerName(peer.name)
            w.append(peer.identity.count == PeerEntry.identityBytes ? peer.identity : PeerEntry.noIdentity)
            w.str8(peer.nickname, maxLength: Self.maxNicknameBytes)
            w.u64(peer.uid)
            w.u64(peer.version)
            w.u16(peer.shortId)
            let connections = peer.connections.prefix(Self.maxConnections)
            w.u16(UInt16(connections.count))
            for c in connections {
                w.peerName(c.remote)
                w.str8(c.address, maxLength: Self.maxAddressBytes)
                // An MTU outside 68…65535 cannot be carried: it is left out (unknown).
                let mtu = c.mtu.flatMap { (Self.minMTU...0xFFFF).contains($0) ? UInt16($0) : nil }
                w.u8((c.established ? Self.flagEstablished : 0) | (c.outbound ? Self.flagOutbound : 0) | (mtu != nil ? Self.flagMTU : 0)
                     | Self.dataPlaneFlags(c.dataPlane) | (c.dataPlaneDown ? Self.flagDataPlaneDown : 0))
                if let mtu { w.u16(mtu) }
            }
        }
        return w.bytes
    }

    /// Decodes per protocol.md §4. Throws `WireError` on anything malformed: truncation, a count
    /// over its cap or larger than the bytes left could hold, a nickname over 64 bytes, invalid
    /// UTF-8, a short id over 4095, a connection MTU under 68, or bytes after the last entry.
    /// Unknown connection flag bits are ignored.
    public static func decode(_ bytes: [UInt8]) throws -> TopologyUpdate {
        var r = ByteReader(bytes)
        let peerCount = try r.count16("topology peer count", limit: maxPeers, minEntrySize: minPeerEntrySize)
        var peers: [PeerEntry] = []
        peers.reserveCapacity(peerCount)
        for _ in 0..<peerCount {
            let name = try r.peerName("peer name")
            let identity = try r.bytes(PeerEntry.identityBytes, "peer identity key")
            let nickname = try r.str8("peer nickname", maxLength: maxNicknameBytes)
            let uid = try r.u64("peer uid")
            let version = try r.u64("peer version")
            let shortId = try r.u16("peer short id")
            guard shortId <= maxShortId else { throw WireError.invalid(what: "short id \(shortId) (over 4095)") }
            let connectionCount = try r.count16("peer connection count", limit: maxConnections, minEntrySize: minConnectionEntrySize)
            var connections: [ConnectionEntry] = []
            connections.reserveCapacity(connectionCount)
            for _ in 0..<connectionCount {
                let remote = try r.peerName("connection remote name")
                let address = try r.str8("connection address", maxLength: maxAddressBytes)
                let flags = try r.u8("connection flags")
                var mtu: Int?
                if flags & flagMTU != 0 {
                    let value = Int(try r.u16("connection mtu"))
                    guard value >= minMTU else { throw WireError.invalid(what: "connection mtu \(value) (under \(minMTU))") }
                    mtu = value
                }
                connections.append(ConnectionEntry(remote: remote, address: address,
                                                   established: flags & flagEstablished != 0,
                                                   outbound: flags & flagOutbound != 0, mtu: mtu, dataPlane: dataPlane(flags),
                                                   dataPlaneDown: flags & flagDataPlaneDown != 0))
            }
            peers.append(PeerEntry(name: name, nickname: nickname, uid: uid, version: version,
                                   shortId: shortId, connections: connections, identity: identity))
        }
        guard r.isAtEnd else { throw WireError.invalid(what: "topology update (\(r.remaining) bytes after the last entry)") }
        return TopologyUpdate(peers: peers)
    }

    /// Bits 3–5 of a connection's flags for its data-plane report; 0 when there is none.
    static func dataPlaneFlags(_ report: DataPlaneReport?) -> UInt8 {
        guard let report, let code = modeCodes[report.mode] else { return 0 }
        return code << flagModeShift | (report.encrypted ? flagEncrypted : 0)
    }

    /// The data-plane report bits 3–5 of `flags` carry; nil when bits 3–4 are 0 (not reported).
    static func dataPlane(_ flags: UInt8) -> DataPlaneReport? {
        let code = (flags & flagModeMask) >> flagModeShift
        guard let mode = modeCodes.first(where: { $0.value == code })?.key else { return nil }
        return DataPlaneReport(mode: mode, encrypted: flags & flagEncrypted != 0)
    }
}
