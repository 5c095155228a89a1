// Anti-entropy for topology gossip (docs/protocol.md §4.3): the GOSSIP_DIGEST message, which says
// which version of each peer's entry a router holds without carrying the entries, and the split
// of a list of entries into GOSSIP payloads of bounded size. The codec only; the rules are in
// WeftMesh/Gossip.swift.

/// The version of one peer's entry a router holds.
public struct PeerVersion: Hashable, Sendable {
    public var name: PeerName
    public var uid: UInt64
    public var version: UInt64

    public init(name: PeerName, uid: UInt64, version: UInt64) {
        self.name = name
        self.uid = uid
        self.version = version
    }

    public init(_ entry: PeerEntry) {
        self.init(name: entry.name, uid: entry.uid, version: entry.version)
    }

    /// The order of the merge rule (protocol.md §4): version first, then uid.
    public func isNewer(than other: PeerVersion) -> Bool {
        (version, uid) > (other.version, other.uid)
    }
}

/// The payload of a GOSSIP_DIGEST message.
public enum GossipDigest: Equatable, Sendable {
    /// How many entries the sender holds and a hash of their versions: equal on both ends of a
    /// link when they hold the same entries.
    case summary(count: UInt16, hash: UInt64)
    /// Every version the sender holds. `wantsReply`: if the receiver holds entries the sender
    /// lacks, it answers with its own full digest (`wantsReply` false) as well as pushing
    /// entries.
    case full([PeerVersion], wantsReply: Bool)

    static let kindSummary: UInt8 = 0
    static let kindFullWantsReply: UInt8 = 1
    static let kindFull: UInt8 = 2
    /// name 6 + uid 8 + version 8.
    static let versionSize = 22

    /// The summary of `versions` (any order): FNV-1a 64 over the sorted list's encoding.
    public static func summary(of versions: [PeerVersion]) -> GossipDigest {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        // Digests are made of Topology.versions, already in order: sort only when not.
        let ordered = zip(versions, versions.dropFirst()).allSatisfy { $0.name < $1.name } ? versions : versions.sorted { $0.name < $1.name }
        for v in ordered {
            for shift in stride(from: 40, through: 0, by: -8) { mix(UInt8(truncatingIfNeeded: v.name.value >> UInt64(shift))) }
            for shift in stride(from: 56, through: 0, by: -8) { mix(UInt8(truncatingIfNeeded: v.uid >> UInt64(shift))) }
            for shift in stride(from: 56, through: 0, by: -8) { mix(UInt8(truncatingIfNeeded: v.version >> UInt64(shift))) }
        }
        return .summary(count: UInt16(clamping: versions.count), hash: hash)
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .summary(let count, let hash):
            w.u8(Self.kindSummary)
            w.u16(count)
            w.u64(hash)
        case .full(let versions, let wantsReply):
            let written = versions.prefix(TopologyUpdate.maxPeers)
            w.u8(wantsReply ? Self.kindFullWantsReply : Self.kindFull)
            w.u16(UInt16(written.count))
            for v in written {
                w.peerName(v.name)
                w.u64(v.uid)
                w.u64(v.version)
            }
        }
        return w.bytes
    }

    /// Throws `WireError` on an unknown kind, truncation, a count over 4096 or larger than the
    /// bytes could hold, or bytes after the end.
    public static func decode(_ bytes: [UInt8]) throws -> GossipDigest {
        var r = ByteReader(bytes)
        let kind = try r.u8("digest kind")
        let digest: GossipDigest
        switch kind {
        case kindSummary:
            digest = .summary(count: try r.u16("digest count"), hash: try r.u64("digest hash"))
        case kindFull, kindFullWantsReply:
            let count = try r.count16("digest entry count", limit: TopologyUpdate.maxPeers, minEntrySize: versionSize)
            var versions: [PeerVersion] = []
            versions.reserveCapacity(count)
            for _ in 0..<count {
                versions.append(PeerVersion(name: try r.peerName("digest peer name"), uid: try r.u64("digest uid"),
                                            version: try r.u64("digest version")))
            }
            digest = .full(versions, wantsReply: kind == kindFullWantsReply)
        default:
            throw WireError.invalid(what: "digest kind \(kind)")
        }
        guard r.isAtEnd else { throw WireError.invalid(what: "digest (\(r.remaining) bytes after the end)") }
        return digest
    }
}

extension TopologyUpdate {
    /// GOSSIP payloads carrying `peers` in order, each at most `maxBytes` long (a single entry
    /// larger than that travels alone) and at most 4096 entries. Sizes are measured by encoding
    /// each entry, so the split never guesses at the format.
    public static func payloads(_ peers: [PeerEntry], maxBytes: Int) -> [[UInt8]] {
        payloads(encoded: peers.map(encodedEntry), maxBytes: maxBytes)
    }

    /// One entry's encoding without the 2-byte count in front: what `payloads(encoded:maxBytes:)`
    /// joins, so that an entry going to several neighbours is encoded once.
    public static func encodedEntry(_ peer: PeerEntry) -> [UInt8] {
        Array(TopologyUpdate(peers: [peer]).encode().dropFirst(2))
    }

    /// `payloads(_:maxBytes:)` of entries already encoded (`encodedEntry`).
    public static func payloads(encoded entries: [[UInt8]], maxBytes: Int) -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        var body: [UInt8] = []
        var count = 0
        func flush() {
            guard count > 0 else { return }
            var w = ByteWriter(capacity: 2 + body.count)
            w.u16(UInt16(count))
            w.append(body)
            payloads.append(w.bytes)
            body.removeAll(keepingCapacity: true)
            count = 0
        }
        for encoded in entries {
            if count > 0, 2 + body.count + encoded.count > maxBytes || count >= maxPeers { flush() }
            body.append(contentsOf: encoded)
            count += 1
        }
        flush()
        return payloads
    }
}
