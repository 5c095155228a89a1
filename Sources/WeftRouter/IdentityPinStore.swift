// The router's identity pins (docs/protocol.md §3.10): the pure IdentityPins (WeftMesh) with when
// and where each key was first seen, the refused claims status shows, and the file
// `<data-dir>/identity-pins.json` (Keys/README.md): mode 0600, written atomically, a damaged file
// refused at launch and never overwritten, fields this version does not know kept.
import Foundation
import WeftControl
import WeftCrypto
import WeftMesh
import WeftWire

/// Where a claim of a (name, key) was seen, for logs and status.
public enum PinSource: Equatable, Sendable, CustomStringConvertible {
    /// This router's own key, pinned at start.
    case own
    /// A gossiped entry, from the neighbour `from` at `address`.
    case gossip(from: PeerName, address: String)
    /// A link's handshake, from `address`.
    case link(address: String)

    public var description: String {
        switch self {
        case .own: return "this router"
        case .gossip(let from, let address): return "gossip from \(from) (\(address))"
        case .link(let address): return "link from \(address)"
        }
    }

    /// The `source` label of weft_identity_refusals_total.
    var label: String {
        switch self {
        case .own: return "own"
        case .gossip: return "gossip"
        case .link: return "link"
        }
    }
}

struct PinFileEntry: Codable, Equatable {
    var name: String
    /// Hex of the 32-byte public key.
    var identity: String
    var firstSeen: String
    var source: String
    var unknown: [String: JSONValue] = [:]

    private static let knownKeys: Set<String> = ["name", "identity", "firstSeen", "source"]

    init(name: String, identity: String, firstSeen: String, source: String) {
        self.name = name
        self.identity = identity
        self.firstSeen = firstSeen
        self.source = source
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.decode(String.self, forKey: AnyKey("name"))
        identity = try c.decode(String.self, forKey: AnyKey("identity"))
        firstSeen = try c.decode(String.self, forKey: AnyKey("firstSeen"))
        source = try c.decode(String.self, forKey: AnyKey("source"))
        unknown = try JSONValue.unknownFields(of: c, known: Self.knownKeys)
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(identity, forKey: AnyKey("identity"))
        try c.encode(firstSeen, forKey: AnyKey("firstSeen"))
        try c.encode(source, forKey: AnyKey("source"))
        for (key, value) in unknown { try c.encode(value, forKey: AnyKey(key)) }
    }
}

enum PinFileKind: DataDirFileKind {
    typealias Entry = PinFileEntry
    static let currentFormat = 1
    static let listKey = "pins"
}

typealias PinFile = DataDirFile<PinFileKind>

/// Confined to the router's event loop.
final class IdentityPinStore {
    static let fileName = "identity-pins.json"
    /// nil: kept in memory only (a store built without a data dir).
    let path: String?
    private(set) var pins: IdentityPins
    /// What the file says of each pin, by name (a pin's `firstSeen` and `source` never change).
    private var entries: [PeerName: PinFileEntry]
    private var unknownFields: [String: JSONValue]
    /// Refused claims, oldest first, for status; keyed by (name, offered key).
    private(set) var conflicts: [PinConflictStatus] = []
    private var conflictIndex: [String: Int] = [:]
    /// Pins made since the file was last written (saved by the router's tick, not per pin: a
    /// router joining a mesh of a thousand would otherwise write the file a thousand times).
    private(set) var dirty = false
    /// At most this many conflicts are shown; later ones are still refused, counted and logged.
    static let maxConflicts = 256

    init(path: String?, file: PinFile = PinFile(entries: [], unknown: [:]), pins: IdentityPins = IdentityPins(),
         entries: [PeerName: PinFileEntry] = [:]) {
        self.path = path
        self.pins = pins
        self.entries = entries
        self.unknownFields = file.unknown
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// The store at start-up: the file in `dataDir` if there is one (checked; a damaged one stops
    /// the launch), with `own`'s key pinned to its name; a new file is written at once, an
    /// existing one only when a pin is added.
    static func load(dataDir: String, own: PeerName, ownKey: [UInt8]?, now: Date = Date()) throws -> IdentityPinStore {
        let path = (dataDir as NSString).appendingPathComponent(fileName)
        let store: IdentityPinStore
        if let data = FileManager.default.contents(atPath: path) {
            let (file, pins, entries) = try decode(data, path: path)
            store = IdentityPinStore(path: path, file: file, pins: pins, entries: entries)
        } else {
            store = IdentityPinStore(path: path)
            store.dirty = true
        }
        if let ownKey {
            if case .refused(let why, _) = store.check(name: own, key: ownKey, source: .own, now: now) {
                throw ConfigError("\(path) pins this router's name \(own) to another key (\(why)); the file does not belong to "
                                  + "this data dir's identity.key: restore the matching pair, or move the file away")
            }
        }
        if store.dirty { try store.save() }
        return store
    }

    /// A pin file's contents, checked; `path` names the file in errors. Refused: what does not
    /// decode, another format, a pin whose name or key is malformed or whose key does not derive
    /// its name, a name pinned twice.
    static func decode(_ data: Data, path: String) throws -> (PinFile, IdentityPins, [PeerName: PinFileEntry]) {
        let file: PinFile
        do { file = try JSONDecoder().decode(PinFile.self, from: data) } catch {
            throw ConfigError("\(path) is not Weft's identity pins (\(error)); restore it from a backup, or move it away "
                              + "to trust every peer's key anew on first sight")
        }
        guard file.format == PinFile.currentFormat else {
            throw ConfigError("\(path) has pin format \(file.format), but this Weft reads only format \(PinFile.currentFormat); "
                              + "run the Weft version that wrote it, or move the file away")
        }
        var pins = IdentityPins()
        var entries: [PeerName: PinFileEntry] = [:]
        for entry in file.entries {
            guard let name = PeerName(entry.name), let key = Hex.decode(entry.identity), key.count == PeerEntry.identityBytes else {
                throw ConfigError("\(path): the pin of \(entry.name) is damaged (a name like aa:bb:cc:dd:ee:ff and 64 hex digits "
                                  + "of identity are needed); correct or remove it, or restore a backup")
            }
            guard PeerName(bytes: IdentityKey.peerNameBytes(publicKey: key)) == name else {
                throw ConfigError("\(path): the pin of \(entry.name) has a key that does not derive that name (docs/protocol.md §1); "
                                  + "the file is damaged: remove that pin or restore a backup")
            }
            guard entries[name] == nil else {
                throw ConfigError("\(path): \(entry.name) is pinned twice; remove one of the two")
            }
            pins.restore(name: name, key: key)
            entries[name] = entry
        }
        return (file, pins, entries)
    }

    /// `IdentityPins.check` of a claim that `key` is `name`'s, with the first sight recorded for
    /// the file and a refusal recorded for status.
    func check(name: PeerName, key: [UInt8], source: PinSource, now: Date = Date()) -> PinCheck {
        let result = pins.check(name: name, key: key) { PeerName(bytes: IdentityKey.peerNameBytes(publicKey: key)) }
        switch result {
        case .accepted(firstSight: true):
            entries[name] = PinFileEntry(name: name.description, identity: Hex.encode(key), firstSeen: Self.timestamp(now),
                                         source: source.description)
            dirty = true
        case .accepted:
            break
        case .refused(let why, _):
            recordConflict(name: name, key: key, why: why, source: source, now: now)
        }
        return result
    }

    /// Refuses `key` from now on, whatever name it claims. The revocation set is the one list of
    /// revoked keys (RevocationStore.swift); the router feeds each of its keys here.
    func revoke(_ key: [UInt8]) { pins.revoke(key) }

    private func recordConflict(name: PeerName, key: [UInt8], why: PinRefusal, source: PinSource, now: Date) {
        let id = "\(name) \(Hex.encode(key))"
        let time = Self.timestamp(now)
        if let index = conflictIndex[id] {
            conflicts[index].lastSeen = time
            conflicts[index].count += 1
            return
        }
        guard conflicts.count < Self.maxConflicts else { return }
        let pinned: String?
        switch why {
        case .otherKey(let key): pinned = IdentityKey.fingerprint(publicKey: key)
        case .nameNotDerived, .revoked: pinned = pins.keys[name].map(IdentityKey.fingerprint)
        }
        conflictIndex[id] = conflicts.count
        conflicts.append(PinConflictStatus(name: name.description, reason: Self.reasonLabel(why), pinnedIdentity: pinned,
                                           offeredIdentity: IdentityKey.fingerprint(publicKey: key), source: source.description,
                                           firstSeen: time, lastSeen: time, count: 1))
    }

    /// The `reason` of status and the label of weft_identity_refusals_total.
    static func reasonLabel(_ why: PinRefusal) -> String {
        switch why {
        case .nameNotDerived: return "nameNotDerived"
        case .otherKey: return "otherKey"
        case .revoked: return "revoked"
        }
    }

    /// Writes the file (sorted by name, keys sorted, a final newline) when memory-only is not set.
    func save() throws {
        dirty = false
        guard let path else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let file = PinFile(entries: entries.keys.sorted().map { entries[$0]! }, unknown: unknownFields)
        let data = try encoder.encode(file)
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicFile.write(Array(data) + [10], to: path, mode: 0o600)
        } catch {
            dirty = true
            throw error
        }
    }
}

extension IdentityPinStore {
    /// What a link hears when its authenticated key is refused (docs/protocol.md §3.1 codes 11–13).
    static func refuse(_ why: PinRefusal, name: PeerName, key: [UInt8]) -> Refuse {
        let offered = IdentityKey.fingerprint(publicKey: key)
        switch why {
        case .otherKey(let pinned):
            return Refuse(code: .identityPinned, text: "identity pinned: peer name \(name) is pinned here to identity \(IdentityKey.fingerprint(publicKey: pinned)), not to \(offered); a router whose key was replaced needs a new name")
        case .nameNotDerived:
            return Refuse(code: .identityMismatch, text: "identity mismatch: peer name \(name) does not belong to identity \(offered)")
        case .revoked:
            return Refuse(code: .revoked, text: "revoked: identity \(offered) (peer \(name)) is revoked in this mesh; this router cannot rejoin it")
        }
    }
}
