// A revocation of a router's identity key and REVOCATIONS (0x13), the message that carries the
// mesh's add-only set of them (docs/protocol.md §3.11).

/// One revoked identity key, with what an operator needs to recognise it later: the name and
/// nickname it had, which router revoked it and when.
public struct Revocation: Equatable, Hashable, Sendable {
    public static let keyLength = 32

    /// The revoked identity public key: what is refused from now on.
    public var key: [UInt8]
    /// The peer name the key gives (docs/protocol.md §1), as it was when revoked.
    public var name: PeerName
    /// Its nickname then (for `weft revoke --list`; may be empty).
    public var nickname: String
    /// The router on which `weft revoke` was run.
    public var revokedBy: PeerName
    /// When, in seconds since 1970 (UTC), by the revoking router's clock.
    public var at: UInt64

    public init(key: [UInt8], name: PeerName, nickname: String, revokedBy: PeerName, at: UInt64) {
        self.key = key
        self.name = name
        self.nickname = nickname
        self.revokedBy = revokedBy
        self.at = at
    }

    /// Of two records of the same key, the one every router keeps: the earlier, then the one of
    /// the smaller revoking name, then the smaller nickname bytes. A total order, so routers that
    /// merged the same records in any order hold the same one.
    public func precedes(_ other: Revocation) -> Bool {
        if at != other.at { return at < other.at }
        if revokedBy != other.revokedBy { return revokedBy < other.revokedBy }
        if name != other.name { return name < other.name }
        return Array(nickname.utf8).lexicographicallyPrecedes(Array(other.nickname.utf8))
    }
}

/// REVOCATIONS: u16 count (≤ `maxRecords`), then per record the key (32), the name (6), the
/// revoking router's name (6), the time (u64) and the nickname (u8 length ‖ UTF-8, ≤ 64 bytes).
public struct RevocationList: Equatable, Sendable {
    /// As many records as a topology has peers (docs/protocol.md §4): the set is never sent
    /// larger, and the message stays under 512 KiB.
    public static let maxRecords = TopologyUpdate.maxPeers
    /// key 32 + name 6 + revoked by 6 + at 8 + nickname length 1.
    static let minRecordBytes = 53

    public var records: [Revocation]

    public init(records: [Revocation]) { self.records = records }

    /// Records beyond `maxRecords` are not written (the set never gets there, see above); a
    /// nickname is cut at a character boundary to the topology's 64 bytes.
    public func encode() -> [UInt8] {
        let written = records.prefix(Self.maxRecords)
        var w = ByteWriter(capacity: 2 + written.count * (Self.minRecordBytes + 16))
        w.u16(UInt16(written.count))
        for record in written {
            w.append(record.key)
            w.u48(record.name.value)
            w.u48(record.revokedBy.value)
            w.u64(record.at)
            w.str8(record.nickname, maxLength: TopologyUpdate.maxNicknameBytes)
        }
        return w.bytes
    }

    /// Strict: a count over the cap or beyond the bytes, a short record, a nickname over 64 bytes
    /// or not UTF-8, or bytes after the last record make the whole message malformed.
    public static func decode(_ bytes: [UInt8]) throws -> RevocationList {
        var r = ByteReader(bytes)
        let count = try r.count16("revocation count", limit: maxRecords, minEntrySize: minRecordBytes)
        var records: [Revocation] = []
        records.reserveCapacity(count)
        for _ in 0..<count {
            let key = try r.bytes(Revocation.keyLength, "revoked key")
            let name = PeerName(value: try r.u48("revoked name"))
            let by = PeerName(value: try r.u48("revoking router"))
            let at = try r.u64("revocation time")
            let nickname = try r.str8("revoked nickname", maxLength: TopologyUpdate.maxNicknameBytes)
            records.append(Revocation(key: key, name: name, nickname: nickname, revokedBy: by, at: at))
        }
        guard r.isAtEnd else { throw WireError.invalid(what: "revocations (\(r.remaining) bytes after the last record)") }
        return RevocationList(records: records)
    }
}
