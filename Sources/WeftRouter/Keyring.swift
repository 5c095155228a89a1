// The password keyring (docs/design.md §6, Keys/README.md): PSK entries with ids and states, kept in
// `<data-dir>/keyring.json`, mode 0600, written atomically. It stores the Argon2id output (the
// PSK), never the password, and is never logged.
import Foundation
import WeftControl
import WeftCrypto

struct KeyringEntry: Codable, Equatable {
    var id: String
    var state: KeyState
    var addedAt: String
    var retireAt: String?
    /// Hex of the 32-byte PSK.
    var psk: String
    /// The entry is being retired because of a revocation (docs/protocol.md §3.11): until it
    /// retires it is accepted only from identity keys pinned here. Written only when true.
    var pinnedOnly: Bool = false
    /// Fields this version does not know (a newer Weft's, an operator's note): kept as they
    /// were whenever Weft writes the file.
    var unknown: [String: JSONValue] = [:]

    private static let knownKeys: Set<String> = ["id", "state", "addedAt", "retireAt", "psk", "pinnedOnly"]

    init(id: String, state: KeyState, addedAt: String, retireAt: String?, psk: String) {
        self.id = id
        self.state = state
        self.addedAt = addedAt
        self.retireAt = retireAt
        self.psk = psk
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        id = try c.decode(String.self, forKey: AnyKey("id"))
        state = try c.decode(KeyState.self, forKey: AnyKey("state"))
        addedAt = try c.decode(String.self, forKey: AnyKey("addedAt"))
        retireAt = try c.decodeIfPresent(String.self, forKey: AnyKey("retireAt"))
        psk = try c.decode(String.self, forKey: AnyKey("psk"))
        pinnedOnly = try c.decodeIfPresent(Bool.self, forKey: AnyKey("pinnedOnly")) ?? false
        unknown = try JSONValue.unknownFields(of: c, known: Self.knownKeys)
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(id, forKey: AnyKey("id"))
        try c.encode(state, forKey: AnyKey("state"))
        try c.encode(addedAt, forKey: AnyKey("addedAt"))
        try c.encodeIfPresent(retireAt, forKey: AnyKey("retireAt"))
        try c.encode(psk, forKey: AnyKey("psk"))
        if pinnedOnly { try c.encode(true, forKey: AnyKey("pinnedOnly")) }
        for (key, value) in unknown { try c.encode(value, forKey: AnyKey(key)) }
    }
}

enum KeyringFileKind: DataDirFileKind {
    typealias Entry = KeyringEntry
    static let currentFormat = 1
    static let listKey = "entries"
}

typealias KeyringFile = DataDirFile<KeyringFileKind>

public final class Keyring: @unchecked Sendable {  // confined to the router's event loop after start
    public static let fileName = "keyring.json"
    let path: String
    private(set) var entries: [KeyringEntry]
    /// The file's top-level fields this version does not know, written back as they were.
    private var unknownFields: [String: JSONValue]

    init(path: String, entries: [KeyringEntry], unknownFields: [String: JSONValue] = [:]) {
        self.path = path
        self.entries = entries
        self.unknownFields = unknownFields
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// The keyring at start-up (the rules are in Keys/README.md): the file in the data dir if
    /// there is one, seeded with the launch password when it is new; nil without either. An
    /// existing file is only read: what start-up changes (a launch password it lacks, an accepted
    /// entry promoted) lives in memory until Weft next writes the file for a change of its own.
    public static func load(dataDir: String, launchPSK: PreSharedKey?, log: (String) -> Void) throws -> Keyring? {
        let path = (dataDir as NSString).appendingPathComponent(fileName)
        let keyring: Keyring
        if let file = try read(path: path) {
            keyring = Keyring(path: path, entries: file.entries, unknownFields: file.unknown)
            if let launchPSK {
                switch keyring.state(of: launchPSK.id) {
                case nil:
                    keyring.add(launchPSK, state: .accepted)
                    log("the launch password (id \(launchPSK.id)) is not in the keyring \(path); it is accepted while this router runs "
                        + "but not written to the file (weft password add keeps it)")
                case .retired:
                    log("the launch password (id \(launchPSK.id)) is retired in the keyring; it stays retired")
                default:
                    break
                }
            }
            keyring.entries = try promoteNewestAccepted(keyring.entries, path: path)
        } else if let launchPSK {
            keyring = Keyring(path: path, entries: [])
            keyring.add(launchPSK, state: .active)
            try keyring.save()
        } else {
            return nil
        }
        return keyring
    }

    /// The keyring file at `path`, checked; nil when there is no file.
    static func read(path: String) throws -> KeyringFile? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try decode(data, path: path)
    }

    /// A keyring file's contents, checked; `path` names the file in errors. Refused: what does
    /// not decode, a format other than this version's, an entry that is damaged or whose id is
    /// not its PSK's (the router would use one id while status and `weft password list` show the other).
    static func decode(_ data: Data, path: String) throws -> KeyringFile {
        let file: KeyringFile
        do { file = try JSONDecoder().decode(KeyringFile.self, from: data) } catch {
            throw ConfigError("\(path) is not a Weft keyring (\(error)); restore it from a backup or delete it and launch with the password")
        }
        guard file.format == KeyringFile.currentFormat else {
            throw ConfigError("\(path) has keyring format \(file.format), but this Weft reads only format \(KeyringFile.currentFormat); "
                              + "run the Weft version that wrote it, or restore a backup of format \(KeyringFile.currentFormat)")
        }
        for entry in file.entries {
            guard PSKID(hex: entry.id) != nil, let key = Hex.decode(entry.psk), key.count == 32 else {
                throw ConfigError("\(path): entry \(entry.id) is damaged; remove it from the file or restore a backup")
            }
            let actual = PreSharedKey(key: key).id.description
            guard actual == entry.id else {
                throw ConfigError("\(path): entry \(entry.id) does not match its psk, whose id is \(actual); "
                                  + "correct the id or remove the entry")
            }
        }
        return file
    }

    /// No active entry: the newest accepted one takes over; none at all is an error.
    static func promoteNewestAccepted(_ entries: [KeyringEntry], path: String) throws -> [KeyringEntry] {
        guard !entries.contains(where: { $0.state == .active }) else { return entries }
        guard let newest = entries.lastIndex(where: { $0.state == .accepted }) else {
            throw ConfigError("\(path) has no active or accepted password; launch with WEFT_PASSWORD or --password-file to add one")
        }
        var entries = entries
        entries[newest].state = .active
        return entries
    }

    /// Takes the file re-read from disk (SIGHUP, Reload.swift); `entries` are its entries checked.
    func replace(with entries: [KeyringEntry], unknownFields: [String: JSONValue]) {
        self.entries = entries
        self.unknownFields = unknownFields
    }

    var activeEntry: KeyringEntry? { entries.first { $0.state == .active } }

    public var active: PreSharedKey? {
        guard let entry = activeEntry, let bytes = Hex.decode(entry.psk) else { return nil }
        return PreSharedKey(key: bytes)
    }

    func state(of id: PSKID) -> KeyState? { entries.first { $0.id == id.description }?.state }

    /// The PSK for a handshake or rekey under `id`: active or accepted entries only.
    public func accepted(_ id: PSKID) -> PreSharedKey? {
        guard let entry = entries.first(where: { $0.id == id.description && $0.state != .retired }),
              let bytes = Hex.decode(entry.psk) else { return nil }
        return PreSharedKey(key: bytes)
    }

    /// Adds a PSK; returns false when its id is already there (its state is kept).
    @discardableResult
    func add(_ psk: PreSharedKey, state: KeyState, at date: Date = Date()) -> Bool {
        guard self.state(of: psk.id) == nil else { return false }
        entries.append(KeyringEntry(id: psk.id.description, state: state, addedAt: Self.timestamp(date), retireAt: nil,
                                    psk: Hex.encode(psk.key)))
        return true
    }

    /// Makes `id` the active entry; the previous active one stays accepted.
    func use(_ id: PSKID) throws {
        guard let index = entries.firstIndex(where: { $0.id == id.description }) else {
            throw ConfigError("no password with id \(id) in the keyring; add it first (weft password add)")
        }
        guard entries[index].state != .retired else {
            throw ConfigError("password \(id) is retired; add a new password instead")
        }
        for i in entries.indices where entries[i].state == .active { entries[i].state = .accepted }
        entries[index].state = .active
        // Made active again by an operator: no longer being retired, so no longer pinned-only.
        entries[index].retireAt = nil
        entries[index].pinnedOnly = false
    }

    func retire(_ id: PSKID) throws {
        guard let index = entries.firstIndex(where: { $0.id == id.description }) else {
            throw ConfigError("no password with id \(id) in the keyring")
        }
        guard entries[index].state != .active else {
            throw ConfigError("password \(id) is the active one; make another active first (weft password use)")
        }
        entries[index].state = .retired
        entries[index].retireAt = nil
    }

    /// Schedules an accepted entry's retirement; `pinnedOnly` marks it as retired because of a
    /// revocation (a mark is never removed by a later, unmarked schedule: the revoked host still
    /// knows that password).
    func scheduleRetirement(_ id: PSKID, at date: Date, pinnedOnly: Bool = false) {
        guard let index = entries.firstIndex(where: { $0.id == id.description }), entries[index].state == .accepted else { return }
        entries[index].retireAt = Self.timestamp(date)
        if pinnedOnly { entries[index].pinnedOnly = true }
    }

    /// Whether `id` is a password being retired because of a revocation.
    func isPinnedOnly(_ id: PSKID) -> Bool { entries.first { $0.id == id.description }?.pinnedOnly ?? false }

    /// Accepted entries whose scheduled retirement has come.
    func due(at date: Date) -> [PSKID] {
        let formatter = ISO8601DateFormatter()
        return entries.compactMap { entry in
            guard entry.state == .accepted, let text = entry.retireAt, let when = formatter.date(from: text), when <= date else { return nil }
            return PSKID(hex: entry.id)
        }
    }

    var list: [PasswordInfo] { entries.map { PasswordInfo(id: $0.id, state: $0.state, addedAt: $0.addedAt, retireAt: $0.retireAt) } }

    func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(KeyringFile(entries: entries, unknown: unknownFields))
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(Array(data) + [10], to: path, mode: 0o600)
    }
}

