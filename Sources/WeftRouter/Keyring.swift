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
}

struct KeyringFile: Codable {
    var format = 1
    var entries: [KeyringEntry]
}

public final class Keyring: @unchecked Sendable {  // confined to the router's event loop after start
    public static let fileName = "keyring.json"
    let path: String
    private(set) var entries: [KeyringEntry]

    init(path: String, entries: [KeyringEntry]) {
        self.path = path
        self.entries = entries
    }

    static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// The keyring at start-up (the rules are in Keys/README.md): the file in the data dir if
    /// there is one, seeded with the launch password when it is new; nil without either.
    public static func load(dataDir: String, launchPSK: PreSharedKey?, log: (String) -> Void) throws -> Keyring? {
        let path = (dataDir as NSString).appendingPathComponent(fileName)
        var keyring: Keyring
        if let entries = try read(path: path) {
            keyring = Keyring(path: path, entries: entries)
            if let launchPSK {
                switch keyring.state(of: launchPSK.id) {
                case nil:
                    keyring.add(launchPSK, state: .accepted)
                    log("the launch password is not in the keyring; added it as accepted (id \(launchPSK.id))")
                case .retired:
                    log("the launch password (id \(launchPSK.id)) is retired in the keyring; it stays retired")
                default:
                    break
                }
            }
        } else if let launchPSK {
            keyring = Keyring(path: path, entries: [])
            keyring.add(launchPSK, state: .active)
        } else {
            return nil
        }
        keyring.entries = try promoteNewestAccepted(keyring.entries, path: path)
        try keyring.save()
        return keyring
    }

    /// The entries of the keyring file at `path`, checked; nil when there is no file.
    static func read(path: String) throws -> [KeyringEntry]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try decode(data, path: path)
    }

    /// The entries of a keyring file's contents, checked; `path` names the file in errors.
    static func decode(_ data: Data, path: String) throws -> [KeyringEntry] {
        let file: KeyringFile
        do { file = try JSONDecoder().decode(KeyringFile.self, from: data) } catch {
            throw ConfigError("\(path) is not a Weft keyring (\(error)); restore it from a backup or delete it and launch with the password")
        }
        for entry in file.entries where PSKID(hex: entry.id) == nil || Hex.decode(entry.psk)?.count != 32 {
            throw ConfigError("\(path): entry \(entry.id) is damaged; remove it from the file or restore a backup")
        }
        return file.entries
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

    /// Takes the entries re-read from disk (SIGHUP, Reload.swift).
    func replace(with entries: [KeyringEntry]) { self.entries = entries }

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
        entries[index].retireAt = nil
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

    func scheduleRetirement(_ id: PSKID, at date: Date) {
        guard let index = entries.firstIndex(where: { $0.id == id.description }), entries[index].state == .accepted else { return }
        entries[index].retireAt = Self.timestamp(date)
    }

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
        let data = try encoder.encode(KeyringFile(entries: entries))
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try AtomicFile.write(Array(data) + [10], to: path, mode: 0o600)
    }
}

