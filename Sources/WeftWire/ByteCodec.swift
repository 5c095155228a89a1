// Bounds-checked big-endian readers and writers for every wire message. Control-plane only:
// the data plane parses packets in place without these.

/// Why a message could not be decoded. Decoders never trap on bad input.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(what: String)
    case tooLarge(what: String, count: Int, limit: Int)
    case invalid(what: String)

    public var description: String {
        switch self {
        case .truncated(let what): return "malformed message: \(what) is truncated"
        case .tooLarge(let what, let count, let limit): return "malformed message: \(what) has \(count) entries, limit \(limit)"
        case .invalid(let what): return "malformed message: invalid \(what)"
        }
    }
}

/// Reads big-endian fields from a byte array, throwing `WireError` instead of reading past the end.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func u8(_ what: String) throws -> UInt8 {
        guard remaining >= 1 else { throw WireError.truncated(what: what) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16(_ what: String) throws -> UInt16 {
        UInt16(try uint(2, what))
    }

    public mutating func u32(_ what: String) throws -> UInt32 {
        UInt32(try uint(4, what))
    }

    public mutating func u64(_ what: String) throws -> UInt64 {
        try uint(8, what)
    }

    /// Six bytes (a peer name).
    public mutating func u48(_ what: String) throws -> UInt64 {
        try uint(6, what)
    }

    private mutating func uint(_ size: Int, _ what: String) throws -> UInt64 {
        guard remaining >= size else { throw WireError.truncated(what: what) }
        var value: UInt64 = 0
        for i in 0..<size { value = (value << 8) | UInt64(bytes[offset + i]) }
        offset += size
        return value
    }

    public mutating func bytes(_ count: Int, _ what: String) throws -> [UInt8] {
        guard count >= 0, remaining >= count else { throw WireError.truncated(what: what) }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// A length byte followed by UTF-8; invalid UTF-8 is an error, not a replacement character.
    public mutating func str8(_ what: String, maxLength: Int = 255) throws -> String {
        let length = Int(try u8(what))
        guard length <= maxLength else { throw WireError.tooLarge(what: what, count: length, limit: maxLength) }
        guard remaining >= length else { throw WireError.truncated(what: what) }
        defer { offset += length }
        let start = offset
        let decoded = bytes.withUnsafeBufferPointer { all in
            String(validating: UnsafeBufferPointer(rebasing: all[start..<(start + length)]), as: UTF8.self)
        }
        guard let text = decoded else {
            throw WireError.invalid(what: "\(what) (not UTF-8)")
        }
        return text
    }

    /// Reads an entry count and checks it against the limit and against the bytes left, so a
    /// forged count can never make the caller reserve more than the message itself could hold.
    public mutating func count16(_ what: String, limit: Int, minEntrySize: Int) throws -> Int {
        let count = Int(try u16(what))
        guard count <= limit else { throw WireError.tooLarge(what: what, count: count, limit: limit) }
        guard count * max(minEntrySize, 1) <= remaining else { throw WireError.truncated(what: what) }
        return count
    }
}

/// Appends big-endian fields to a byte array.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ value: UInt8) { bytes.append(value) }
    public mutating func u16(_ value: UInt16) { uint(UInt64(value), 2) }
    public mutating func u32(_ value: UInt32) { uint(UInt64(value), 4) }
    public mutating func u64(_ value: UInt64) { uint(value, 8) }
    public mutating func u48(_ value: UInt64) { uint(value, 6) }

    private mutating func uint(_ value: UInt64, _ size: Int) {
        for i in stride(from: size - 1, through: 0, by: -1) { bytes.append(UInt8(truncatingIfNeeded: value >> (UInt64(i) * 8))) }
    }

    public mutating func append<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }

    /// Writes a length byte and the UTF-8 of `text`, cut at a character boundary to `maxLength` bytes.
    public mutating func str8(_ text: String, maxLength: Int = 255) {
        let count = text.utf8.count
        if count <= maxLength {
            u8(UInt8(count))
            bytes.append(contentsOf: text.utf8)
            return
        }
        var utf8 = Array(text.utf8)
        if utf8.count > maxLength {
            var cut = maxLength
            while cut > 0 && (utf8[cut] & 0xC0) == 0x80 { cut -= 1 }
            utf8 = Array(utf8[..<cut])
        }
        u8(UInt8(utf8.count))
        bytes.append(contentsOf: utf8)
    }
}
