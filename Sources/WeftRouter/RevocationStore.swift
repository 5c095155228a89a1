// The router's revocations (docs/protocol.md §3.11): the pure RevocationSet (WeftMesh) kept in
// `<data-dir>/revocations.json` (Keys/README.md): mode 0600, written atomically on every change,
// a damaged file refused at launch and never overwritten, fields this version does not know kept.
import Foundation
import WeftCrypto
import WeftMesh
import WeftWire

struct RevocationFileEntry: Codable, Equatable {
    /// Hex of the 32-byte identity public key.
    var identity: String
    var name: String
    var nickname: String
    var revokedBy: String
    /// ISO 8601, UTC, whole seconds (the wire's u64 seconds).
    var at: String
    var unknown: [String: JSONValue] = [:]

    private static let knownKeys: Set<String> = ["identity", "name", "nickname", "revokedBy", "at"]

    init(_ record: Revocation) {
        identity = Hex.encode(record.key)
        name = record.name.description
        nickname = record.nickname
        revokedBy = record.revokedBy.description
        at = RevocationStore.timestamp(record.at)
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        identity = try c.decode(String.self, forKey: AnyKey("identity"))
        name = try c.decode(String.self, forKey: AnyKey("name"))
        nickname = try c.decode(String.self, forKey: AnyKey("nickname"))
        revokedBy = try c.decode(String.self, forKey: AnyKey("revokedBy"))
        at = try c.decode(String.self, forKey: AnyKey("at"))
        unknown = try JSONValue.unknownFields(of: c, known: Self.knownKeys)
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(identity, forKey: AnyKey("identity"))
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(nickname, forKey: AnyKey("nickname"))
        try c.encode(revokedBy, forKey: AnyKey("revokedBy"))
        try c.encode(at, forKey: AnyKey("at"))
        for (key, value) in unknown { try c.encode(value, forKey: AnyKey(key)) }
    }

    /// The record, or nil when a field is malformed.
    var record: Revocation? {
        guard let key = Hex.decode(identity), key.count == Revocation.keyLength, let name = PeerName(name),
              let by = PeerName(revokedBy), let date = ISO8601DateFormatter().date(from: at), date.timeIntervalSince1970 >= 0,
              nickname.utf8.count <= TopologyUpdate.maxNicknameBytes else { return nil }
        return Revocation(key: key, name: name, nickname: nickname, revokedBy: by, at: UInt64(date.timeIntervalSince1970))
    }
}

enum RevocationFileKind: DataDirFileKind {
    typealias Entry = RevocationFileEntry
    static let currentFormat = 1
    static let listKey = "revocations"
}

typealias RevocationFile = DataDirFile<RevocationFileKind>

/// Confined to the router's event loop.
final class RevocationStore {
    static let fileName = "revocations.json"
    /// nil: kept in memory only (a store built without a data dir).
    let path: String?
    private(set) var set: RevocationSet
    /// The unknown fields of each record in the file, by key, written back with the record.
    private var unknownOfRecord: [[UInt8]: [String: JSONValue]]
    private var unknownFields: [String: JSONValue]

    init(path: String?, set: RevocationSet = RevocationSet(), unknownOfRecord: [[UInt8]: [String: JSONValue]] = [:],
         unknownFields: [String: JSONValue] = [:]) {
        self.path = path
        self.set = set
        self.unknownOfRecord = unknownOfRecord
        self.unknownFields = unknownFields
    }

    static func timestamp(_ seconds: UInt64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(seconds)))
    }

    /// The store at start-up: the file in `dataDir` if there is one (checked; a damaged one stops
    /// the launch and is kept), else an empty set; no file is written until a revocation arrives.
    static func load(dataDir: String) throws -> RevocationStore {
        let path = (dataDir as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return RevocationStore(path: path) }
        return try decode(data, path: path)
    }

    /// A revocations file's contents, checked; `path` names the file in errors. Refused: what does
    /// not decode, another format, a record with a malformed field. Two records of one key are
    /// merged as gossip would (the file may have been edited or concatenated by hand).
    static func decode(_ data: Data, path: String) throws -> RevocationStore {
        let file: RevocationFile
        do { file = try JSONDecoder().decode(RevocationFile.self, from: data) } catch {
            throw ConfigError("\(path) is not Weft's revocations (\(error)); restore it from a backup, or move it away: the "
                              + "revocations come back from any peer that holds them once this router reconnects")
        }
        guard file.format == RevocationFile.currentFormat else {
            throw ConfigError("\(path) has revocations format \(file.format), but this Weft reads only format "
                              + "\(RevocationFile.currentFormat); run the Weft version that wrote it, or move the file away")
        }
        var set = RevocationSet()
        var unknown: [[UInt8]: [String: JSONValue]] = [:]
        for entry in file.entries {
            guard let record = entry.record else {
                throw ConfigError("\(path): the revocation of \(entry.name) is damaged (64 hex digits of identity, names like "
                                  + "aa:bb:cc:dd:ee:ff, a nickname of at most \(TopologyUpdate.maxNicknameBytes) bytes and an ISO 8601 "
                                  + "time are needed); correct it or restore a backup")
            }
            set.merge([record])
            if !entry.unknown.isEmpty { unknown[record.key] = entry.unknown }
        }
        return RevocationStore(path: path, set: set, unknownOfRecord: unknown, unknownFields: file.unknown)
    }

    /// `RevocationSet.merge`: the records that changed the set, which the caller saves (`save`).
    func merge(_ records: [Revocation]) -> [Revocation] { set.merge(records) }

    /// Writes the file (records by time then name, keys sorted, a final newline) unless memory-only.
    func save() throws {
        guard let path else { return }
        let entries = set.sorted.map { record -> RevocationFileEntry in
            var entry = RevocationFileEntry(record)
            entry.unknown = unknownOfRecord[record.key] ?? [:]
            return entry
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(RevocationFile(entries: entries, unknown: unknownFields))
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(Array(data) + [10], to: path, mode: 0o600)
    }
}
