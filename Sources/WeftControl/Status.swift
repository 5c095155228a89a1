import WeftDatapath

// The JSON documents of the control API (`weft status … --json`). Field names are a public
// contract: scripts and later issues depend on them.

public enum ConnectionState: String, Codable, Sendable {
    case connecting, established, failed, retrying
}

public enum LinkDirection: String, Codable, Sendable {
    case inbound, outbound
}

public struct ConnectionStatus: Codable, Sendable, Equatable {
    public var peer: String?
    public var nickname: String?
    public var address: String
    public var direction: LinkDirection
    public var state: ConnectionState
    public var encrypted: Bool
    public var trusted: Bool
    /// The data-plane mode ("sleeve", "fastdp"); null until a data plane carries this peer.
    public var mode: String?
    public var pskId: String?
    /// This router's active password id, set only when it differs from `pskId` (the link has
    /// not moved to it: a rekey under way, or the peer lacks it); null otherwise.
    public var activePskId: String? = nil
    public var reason: String?
    /// True when the data plane in `mode` answers heartbeats: traffic to this peer flows.
    public var ready: Bool
    public var connectionId: String?
    public var since: String?
    /// Data-plane cipher ("chacha20-poly1305", "aes-256-gcm"); null when unencrypted.
    public var cipher: String?
    public var mtu: Int?
    /// The family of the link's underlay ("ipv4", "ipv6"): its outer header is 20 or 40 bytes,
    /// which `mtu` accounts for (docs/protocol.md §5.6); null for a connection not yet open.
    public var underlay: String? = nil
    public var keyEpoch: Int?
    public var counters: SleeveCounters.Snapshot?
    /// When this connection last rekeyed (ISO 8601); null before its first rekey.
    public var lastRekeyAt: String?
    /// Gossip-link messages of a type this router does not know, ignored (docs/protocol.md
    /// §3.6); null before the link is established.
    public var unknownMessages: Int? = nil
    /// Bytes of the gossip connection on the wire, each way; null for a connection not yet open.
    public var gossipBytes: GossipBytes? = nil
    /// The fingerprint of the peer's identity key, as the handshake authenticated it (the form of
    /// the router's own `identity`, docs/protocol.md §3.10); null until then, and without a password.
    public var identity: String? = nil

    public struct GossipBytes: Codable, Sendable, Equatable {
        public var sent: UInt64
        public var received: UInt64

        public init(sent: UInt64, received: UInt64) {
            self.sent = sent
            self.received = received
        }
    }

    public init(peer: String? = nil, nickname: String? = nil, address: String, direction: LinkDirection, state: ConnectionState, encrypted: Bool, trusted: Bool, mode: String? = nil, pskId: String? = nil, reason: String? = nil, ready: Bool, connectionId: String? = nil, since: String? = nil, cipher: String? = nil, mtu: Int? = nil, underlay: String? = nil, keyEpoch: Int? = nil, counters: SleeveCounters.Snapshot? = nil, lastRekeyAt: String? = nil, unknownMessages: Int? = nil, gossipBytes: GossipBytes? = nil, identity: String? = nil) {
        self.peer = peer
        self.nickname = nickname
        self.address = address
        self.direction = direction
        self.state = state
        self.encrypted = encrypted
        self.trusted = trusted
        self.mode = mode
        self.pskId = pskId
        self.reason = reason
        self.ready = ready
        self.connectionId = connectionId
        self.since = since
        self.cipher = cipher
        self.mtu = mtu
        self.underlay = underlay
        self.keyEpoch = keyEpoch
        self.counters = counters
        self.lastRekeyAt = lastRekeyAt
        self.unknownMessages = unknownMessages
        self.gossipBytes = gossipBytes
        self.identity = identity
    }

    enum CodingKeys: String, CodingKey {
        case peer, nickname, address, direction, state, encrypted, trusted, mode, pskId, activePskId, reason, ready, connectionId, since
        case cipher, mtu, underlay, keyEpoch, counters, lastRekeyAt, unknownMessages, gossipBytes, identity
    }

    /// Absent values are written as `null`, not left out: scripts read `mode`, `pskId` and
    /// `reason` on every connection.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(peer, forKey: .peer)
        try c.encode(nickname, forKey: .nickname)
        try c.encode(address, forKey: .address)
        try c.encode(direction, forKey: .direction)
        try c.encode(state, forKey: .state)
        try c.encode(encrypted, forKey: .encrypted)
        try c.encode(trusted, forKey: .trusted)
        try c.encode(mode, forKey: .mode)
        try c.encode(pskId, forKey: .pskId)
        try c.encode(activePskId, forKey: .activePskId)
        try c.encode(reason, forKey: .reason)
        try c.encode(ready, forKey: .ready)
        try c.encode(connectionId, forKey: .connectionId)
        try c.encode(since, forKey: .since)
        try c.encode(cipher, forKey: .cipher)
        try c.encode(mtu, forKey: .mtu)
        try c.encode(underlay, forKey: .underlay)
        try c.encode(keyEpoch, forKey: .keyEpoch)
        try c.encode(counters, forKey: .counters)
        try c.encode(lastRekeyAt, forKey: .lastRekeyAt)
        try c.encode(unknownMessages, forKey: .unknownMessages)
        try c.encode(gossipBytes, forKey: .gossipBytes)
        try c.encode(identity, forKey: .identity)
    }
}

public struct PeerStatus: Codable, Sendable, Equatable {
    public var name: String
    public var nickname: String
    public var uid: String
    public var shortId: Int
    public var version: UInt64
    public var connections: Int
    public var reachable: Bool
    /// Name of the directly connected peer that traffic to this one goes through; null for self.
    public var nextHop: String?
    public var isSelf: Bool
    /// The largest IP packet a workload here can send to this peer's workloads: the smallest
    /// overlay MTU of every hop of the route, capped by our own overlay MTU (docs/protocol.md
    /// §4.5); null for self, for unreachable peers and when no hop of the route has a figure.
    public var pathMtu: Int?
    /// The fingerprint of the peer's identity key (docs/protocol.md §3.10), as its gossiped
    /// entry carries it (and as it is pinned here); null when the entry carries none.
    public var identity: String? = nil
    /// Claims of this peer's name refused here (another key, a key that does not derive the
    /// name, a revoked key): the same objects as `pinConflicts` of `weft status --json`.
    public var pinConflicts: [PinConflictStatus] = []
    /// The peer's identity key is revoked in the mesh (docs/protocol.md §3.11): its links are
    /// closed and refused with REFUSE 13, and its entry goes once it is unreachable.
    public var revoked: Bool = false

    public init(name: String, nickname: String, uid: String, shortId: Int, version: UInt64, connections: Int, reachable: Bool, nextHop: String? = nil, isSelf: Bool, pathMtu: Int? = nil, identity: String? = nil,
                pinConflicts: [PinConflictStatus] = [], revoked: Bool = false) {
        self.revoked = revoked
        self.identity = identity
        self.pinConflicts = pinConflicts
        self.name = name
        self.nickname = nickname
        self.uid = uid
        self.shortId = shortId
        self.version = version
        self.connections = connections
        self.reachable = reachable
        self.nextHop = nextHop
        self.isSelf = isSelf
        self.pathMtu = pathMtu
    }

    enum CodingKeys: String, CodingKey { case name, nickname, uid, shortId, version, connections, reachable, nextHop, isSelf, pathMtu, identity, pinConflicts, revoked }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(nickname, forKey: .nickname)
        try c.encode(uid, forKey: .uid)
        try c.encode(shortId, forKey: .shortId)
        try c.encode(version, forKey: .version)
        try c.encode(connections, forKey: .connections)
        try c.encode(reachable, forKey: .reachable)
        try c.encode(nextHop, forKey: .nextHop)
        try c.encode(isSelf, forKey: .isSelf)
        try c.encode(pathMtu, forKey: .pathMtu)
        try c.encode(identity, forKey: .identity)
        try c.encode(pinConflicts, forKey: .pinConflicts)
        try c.encode(revoked, forKey: .revoked)
    }
}

/// One refused claim of a peer name (docs/protocol.md §3.10, docs/operations.md): in
/// `weft status --json` (`pinConflicts`) and on the peer in `weft status peers --json`.
public struct PinConflictStatus: Codable, Sendable, Equatable {
    /// The peer name claimed.
    public var name: String
    /// `otherKey` (the name is pinned to another key), `nameNotDerived` (the key does not give
    /// the name), `revoked` (the key is revoked).
    public var reason: String
    /// The fingerprint of the key pinned for the name; null when none is (`nameNotDerived`).
    public var pinnedIdentity: String?
    /// The fingerprint of the key the claim came with.
    public var offeredIdentity: String
    /// Where the claim was first seen: `gossip from NAME (ADDRESS)` or `link from ADDRESS`.
    public var source: String
    /// When it was first and last seen (ISO 8601, UTC), and how often it was refused.
    public var firstSeen: String
    public var lastSeen: String
    public var count: Int

    public init(name: String, reason: String, pinnedIdentity: String?, offeredIdentity: String, source: String, firstSeen: String,
                lastSeen: String, count: Int) {
        self.name = name
        self.reason = reason
        self.pinnedIdentity = pinnedIdentity
        self.offeredIdentity = offeredIdentity
        self.source = source
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.count = count
    }

    enum CodingKeys: String, CodingKey { case name, reason, pinnedIdentity, offeredIdentity, source, firstSeen, lastSeen, count }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(reason, forKey: .reason)
        try c.encode(pinnedIdentity, forKey: .pinnedIdentity)
        try c.encode(offeredIdentity, forKey: .offeredIdentity)
        try c.encode(source, forKey: .source)
        try c.encode(firstSeen, forKey: .firstSeen)
        try c.encode(lastSeen, forKey: .lastSeen)
        try c.encode(count, forKey: .count)
    }
}

public struct RouterStatus: Codable, Sendable, Equatable {
    public var name: String
    public var nickname: String
    public var port: Int
    public var encryption: Bool
    public var pskId: String?
    public var trustedSubnets: [String]
    public var protocolVersion: Int
    public var peers: Int
    public var connections: [String: Int]
    public var targets: [String]
    public var uptimeSeconds: Int
    public var fastdp: FastdpStatus
    /// The overlay MTU of the bridge, TAP and workload interfaces; `mtu` in JSON.
    public var overlayMTU: Int
    /// Address management in short (`weft ipam` has the shares); null with `--ipalloc-range off`.
    public var ipalloc: IPAllocSummary?
    /// The fingerprint of this router's identity key (docs/protocol.md §3.10).
    public var identity: String? = nil
    /// How many peer names have a pinned identity key here (`<data-dir>/identity-pins.json`).
    public var pinnedIdentities: Int = 0
    /// Every refused claim of a peer name since the router started, oldest first (at most 256).
    public var pinConflicts: [PinConflictStatus] = []

    public init(name: String, nickname: String, port: Int, encryption: Bool, pskId: String? = nil, trustedSubnets: [String], protocolVersion: Int, peers: Int, connections: [String: Int], targets: [String], uptimeSeconds: Int, fastdp: FastdpStatus, overlayMTU: Int, ipalloc: IPAllocSummary? = nil, identity: String? = nil,
                pinnedIdentities: Int = 0, pinConflicts: [PinConflictStatus] = []) {
        self.identity = identity
        self.pinnedIdentities = pinnedIdentities
        self.pinConflicts = pinConflicts
        self.ipalloc = ipalloc
        self.name = name
        self.nickname = nickname
        self.port = port
        self.encryption = encryption
        self.pskId = pskId
        self.trustedSubnets = trustedSubnets
        self.protocolVersion = protocolVersion
        self.peers = peers
        self.connections = connections
        self.targets = targets
        self.uptimeSeconds = uptimeSeconds
        self.fastdp = fastdp
        self.overlayMTU = overlayMTU
    }

    enum CodingKeys: String, CodingKey {
        case name, nickname, port, encryption, pskId, trustedSubnets, protocolVersion, peers, connections, targets, uptimeSeconds, fastdp, ipalloc, identity
        case pinnedIdentities, pinConflicts
        case overlayMTU = "mtu"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(nickname, forKey: .nickname)
        try c.encode(port, forKey: .port)
        try c.encode(encryption, forKey: .encryption)
        try c.encode(pskId, forKey: .pskId)
        try c.encode(trustedSubnets, forKey: .trustedSubnets)
        try c.encode(protocolVersion, forKey: .protocolVersion)
        try c.encode(peers, forKey: .peers)
        try c.encode(connections, forKey: .connections)
        try c.encode(targets, forKey: .targets)
        try c.encode(uptimeSeconds, forKey: .uptimeSeconds)
        try c.encode(fastdp, forKey: .fastdp)
        try c.encode(overlayMTU, forKey: .overlayMTU)
        try c.encode(ipalloc, forKey: .ipalloc)
        try c.encode(identity, forKey: .identity)
        try c.encode(pinnedIdentities, forKey: .pinnedIdentities)
        try c.encode(pinConflicts, forKey: .pinConflicts)
    }
}

/// `ipalloc` in `weft status --json`.
public struct IPAllocSummary: Codable, Sendable, Equatable {
    public var range: String
    /// Whether the range has been divided among the routers yet.
    public var seeded: Bool
    /// Addresses this router gave out, and those it can still give without asking a peer.
    public var used: Int
    public var free: UInt64
    /// Peers whose pool this router does not merge with (another range or another pool), and why.
    public var refusedPools: [String: String]

    public init(range: String, seeded: Bool, used: Int, free: UInt64, refusedPools: [String: String]) {
        self.range = range
        self.seeded = seeded
        self.used = used
        self.free = free
        self.refusedPools = refusedPools
    }
}

/// Error document of the control API: `{"error": "..."}` with a non-2xx status.
public struct ControlError: Codable, Sendable {
    public var error: String
    public init(error: String) { self.error = error }
}

/// `weft connect` and `weft forget`.
public struct AddressRequest: Codable, Sendable {
    public var address: String
    public init(address: String) { self.address = address }
}

/// Whether this router can use the kernel fast datapath, and why not (docs/design.md §4).
public struct FastdpStatus: Codable, Sendable, Equatable {
    public var available: Bool
    public var reason: String?
    public var flows: Int

    enum CodingKeys: String, CodingKey { case available, reason, flows }

    public init(available: Bool, reason: String?, flows: Int) {
        self.available = available
        self.reason = reason
        self.flows = flows
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(available, forKey: .available)
        try c.encode(reason, forKey: .reason)
        try c.encode(flows, forKey: .flows)
    }
}

