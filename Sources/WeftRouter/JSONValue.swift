// Any JSON value, so a state file's fields this version does not know survive when Weft writes
// the file again (a newer Weft's additions, an operator's notes), and the envelope every JSON
// state file of the data dir shares (DataDirFile).
import Foundation

indirect enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let value = try? c.decode(Bool.self) { self = .bool(value) }
        else if let value = try? c.decode(Double.self) { self = .number(value) }
        else if let value = try? c.decode(String.self) { self = .string(value) }
        else if let value = try? c.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let value): try c.encode(value)
        case .number(let value):
            // Integers stay integers (2, not 2.0).
            if value == value.rounded(), abs(value) < 1e15 { try c.encode(Int64(value)) } else { try c.encode(value) }
        case .string(let value): try c.encode(value)
        case .array(let value): try c.encode(value)
        case .object(let value): try c.encode(value)
        }
    }

    /// The fields of `container` whose keys are not in `known`.
    static func unknownFields(of container: KeyedDecodingContainer<AnyKey>, known: Set<String>) throws -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for key in container.allKeys where !known.contains(key.stringValue) {
            fields[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
        return fields
    }
}

/// A coding key for any field name.
struct AnyKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// What a JSON state file of the data dir is (keyring.json, identity-pins.json): the one format
/// this version reads and writes, and the name of its list of entries.
protocol DataDirFileKind {
    associatedtype Entry: Codable
    static var currentFormat: Int { get }
    static var listKey: String { get }
}

/// The envelope of every JSON state file of the data dir: `{"format": N, "<list>": [...]}` and
/// any fields this version does not know, kept when the file is rewritten. A file of another
/// format decodes with no entries (its list may be laid out differently); its reader refuses it.
struct DataDirFile<Kind: DataDirFileKind>: Codable {
    static var currentFormat: Int { Kind.currentFormat }
    var format = Kind.currentFormat
    var entries: [Kind.Entry]
    var unknown: [String: JSONValue] = [:]

    init(entries: [Kind.Entry], unknown: [String: JSONValue]) {
        self.entries = entries
        self.unknown = unknown
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        format = try c.decode(Int.self, forKey: AnyKey("format"))
        guard format == Kind.currentFormat else { entries = []; return }
        entries = try c.decode([Kind.Entry].self, forKey: AnyKey(Kind.listKey))
        unknown = try JSONValue.unknownFields(of: c, known: ["format", Kind.listKey])
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(format, forKey: AnyKey("format"))
        try c.encode(entries, forKey: AnyKey(Kind.listKey))
        for (key, value) in unknown { try c.encode(value, forKey: AnyKey(key)) }
    }
}
