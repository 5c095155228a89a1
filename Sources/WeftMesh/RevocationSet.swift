// The mesh's revocations as one router holds them: an add-only set keyed by identity key, merged
// from gossip in any order to the same result (docs/protocol.md §3.11). Pure; the router
// persists it (`<data-dir>/revocations.json`) and acts on what a merge adds.
import WeftWire

public struct RevocationSet: Equatable, Sendable {
    /// Identity key → its record (the one `Revocation.precedes` keeps when several arrive).
    public private(set) var records: [[UInt8]: Revocation] = [:]

    public init(_ records: [Revocation] = []) {
        _ = merge(records)
    }

    public var count: Int { records.count }
    public func contains(key: [UInt8]) -> Bool { records[key] != nil }
    public func record(forKey key: [UInt8]) -> Revocation? { records[key] }

    /// The records by time, then name: the order `weft revoke --list` shows and gossip sends.
    public var sorted: [Revocation] {
        records.values.sorted { $0.at != $1.at ? $0.at < $1.at : $0.name < $1.name }
    }

    /// Adds what the set lacks and returns the records that changed it, which are the ones to
    /// pass on. A key already held stays revoked whatever arrives; only its record may move to
    /// the one every router keeps (so repeated gossip settles, never flaps). Records with a key of
    /// the wrong length are ignored (a decoder never yields them).
    @discardableResult
    public mutating func merge(_ incoming: [Revocation]) -> [Revocation] {
        var changed: [Revocation] = []
        for record in incoming where record.key.count == Revocation.keyLength {
            if let held = records[record.key], !record.precedes(held) { continue }
            records[record.key] = record
            changed.append(record)
        }
        return changed
    }
}

/// A candidate for `weft revoke PEER`: a router the topology knows, with its identity key.
public struct PeerCandidate: Equatable, Sendable {
    public var name: PeerName
    public var nickname: String
    /// 32 hex digits (docs/protocol.md §1; computed where the crypto is).
    public var fingerprint: String
    public var key: [UInt8]

    public init(name: PeerName, nickname: String, fingerprint: String, key: [UInt8]) {
        self.name = name
        self.nickname = nickname
        self.fingerprint = fingerprint
        self.key = key
    }
}

public enum PeerSelectionError: Error, Equatable, CustomStringConvertible {
    case empty
    case notFound(String)
    case ambiguous(String, [PeerCandidate])

    public var description: String {
        switch self {
        case .empty:
            return "name the peer to revoke: its peer name (aa:bb:cc:dd:ee:ff), its nickname or its identity fingerprint (see weft status peers)"
        case .notFound(let text):
            return "no peer \"\(text)\" with a known identity key in the topology: name it by peer name, nickname or fingerprint as weft status peers shows them"
        case .ambiguous(let text, let matches):
            let list = matches.map { "\($0.name) (\($0.nickname.isEmpty ? "no nickname" : $0.nickname), \($0.fingerprint))" }.joined(separator: ", ")
            return "\"\(text)\" names \(matches.count) peers: \(list); name one by its peer name or its full fingerprint"
        }
    }
}

public enum PeerSelector {
    /// The shortest fingerprint prefix accepted: 8 hex digits (32 bits) make a chance match
    /// among a few thousand routers unlikely, and an ambiguous one is refused anyway.
    public static let minFingerprintPrefix = 8

    /// Which candidate `text` names, tried in this order, each unambiguous or refused: a peer name
    /// (`aa:bb:…`), a whole fingerprint, a nickname, a fingerprint prefix of at least 8 digits.
    /// Nicknames are claimed by routers themselves and need not be unique; names and
    /// fingerprints are bound to keys.
    public static func select(_ text: String, among candidates: [PeerCandidate]) -> Result<PeerCandidate, PeerSelectionError> {
        let text = trimmingBlanks(text)
        guard !text.isEmpty else { return .failure(.empty) }
        if let name = PeerName(text) {
            return one(text, candidates.filter { $0.name == name })
        }
        let lower = text.lowercased()
        let isHex = lower.allSatisfy { $0.isHexDigit }
        if isHex, lower.count == 32 {
            return one(text, candidates.filter { $0.fingerprint == lower })
        }
        let byNickname = candidates.filter { $0.nickname == text }
        if !byNickname.isEmpty { return one(text, byNickname) }
        if isHex, lower.count >= minFingerprintPrefix {
            return one(text, candidates.filter { $0.fingerprint.hasPrefix(lower) })
        }
        return .failure(.notFound(text))
    }

    private static func one(_ text: String, _ matches: [PeerCandidate]) -> Result<PeerCandidate, PeerSelectionError> {
        switch matches.count {
        case 0: return .failure(.notFound(text))
        case 1: return .success(matches[0])
        default: return .failure(.ambiguous(text, matches.sorted { $0.name < $1.name }))
        }
    }
}
