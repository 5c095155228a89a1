// Codecs for the gossip link: preamble, frame types, hello, refuse (docs/protocol.md §3).

/// Protocol versions this build speaks: 2 only, the identity handshake (docs/protocol.md §3.10).
/// No version-1 deployment is kept, so a version-1 peer is refused (REFUSE 4) with `unsupported`.
public enum LinkVersion {
    public static let minimum: UInt8 = 2
    public static let maximum: UInt8 = 2

    /// The highest version both ranges contain, or nil.
    public static func negotiate(localMin: UInt8 = minimum, localMax: UInt8 = maximum, remoteMin: UInt8, remoteMax: UInt8) -> UInt8? {
        let high = min(localMax, remoteMax)
        return high >= max(localMin, remoteMin) ? high : nil
    }

    /// Why a peer whose preamble offers `remoteMin…remoteMax` has no version in common with this
    /// router, and which host to upgrade (docs/protocol.md §3.10); sent with REFUSE 4 and shown
    /// in status and logs.
    public static func unsupported(remoteMin: UInt8, remoteMax: UInt8) -> String {
        let spoken = minimum == maximum ? "\(maximum)" : "\(minimum)…\(maximum)"
        if remoteMax < minimum {
            let theirs = remoteMin == remoteMax ? "protocol version \(remoteMax) is" : "protocol versions \(remoteMin)…\(remoteMax) are"
            return "\(theirs) not spoken here (this router speaks \(spoken)); upgrade weft on that host"
        }
        return "the remote speaks protocol versions \(remoteMin)…\(remoteMax), newer than this router's \(spoken); upgrade weft on this host"
    }
}

/// The 15 plaintext bytes each side sends first (§3.1).
public struct Preamble: Equatable, Sendable {
    public static let magic: [UInt8] = Array("WEFT".utf8)
    public static let size = 15

    public var minVersion: UInt8
    public var maxVersion: UInt8
    public var hasPassword: Bool
    /// PSK id used for new handshakes, 8 zero bytes without a password.
    public var pskId: [UInt8]

    public init(minVersion: UInt8 = LinkVersion.minimum, maxVersion: UInt8 = LinkVersion.maximum, hasPassword: Bool, pskId: [UInt8]) {
        precondition(pskId.count == 8)
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.hasPassword = hasPassword
        self.pskId = pskId
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Preamble.size)
        w.append(Preamble.magic)
        w.u8(minVersion)
        w.u8(maxVersion)
        w.u8(hasPassword ? 1 : 0)
        w.append(pskId)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Preamble {
        var r = ByteReader(bytes)
        guard try r.bytes(4, "preamble magic") == magic else { throw WireError.invalid(what: "preamble magic (not a Weft router?)") }
        let minV = try r.u8("preamble version")
        let maxV = try r.u8("preamble version")
        guard minV <= maxV else { throw WireError.invalid(what: "preamble version range") }
        let flags = try r.u8("preamble flags")
        let psk = try r.bytes(8, "preamble psk id")
        return Preamble(minVersion: minV, maxVersion: maxV, hasPassword: flags & 1 != 0, pskId: psk)
    }
}

/// Frame body types (§3.2, §3.6). Unknown values are ignored by receivers.
public enum MessageType: UInt8, Sendable {
    case handshakeInit = 0x01
    case handshakeResponse = 0x02
    case helloPlain = 0x03
    case refuse = 0x04
    /// Protocol version 2: Noise message 3 (docs/protocol.md §3.10).
    case handshakeFinish = 0x05
    case gossip = 0x10
    case keepalive = 0x11
    case gossipDigest = 0x12
    /// The add-only set of revoked identity keys (§3.11; Revocation.swift).
    case revocations = 0x13
    case rekeyInit = 0x20
    case rekeyResponse = 0x21
    case rekeyDone = 0x22
    case passwordOffer = 0x30
    case passwordAck = 0x31
    case passwordUse = 0x32
    case ipamUpdate = 0x40
    case ipamRequest = 0x41
}

/// Frame size caps, checked before any allocation (§3.2).
public enum FrameLimits {
    public static let headerSize = 4
    public static let beforeHandshake = 4096
    public static let afterHandshake = 1 << 20
}

/// Why a link was refused (§3.3). The raw value travels in REFUSE.
public enum RefuseCode: UInt8, Sendable, Codable {
    case unknownPSKId = 1
    case handshakeFailed = 2
    case passwordMismatch = 3
    case noCommonVersion = 4
    case duplicateConnection = 5
    case connectingToSelf = 6
    case protocolError = 7
    case shuttingDown = 8
    case rateLimited = 9
    case handshakeTimeout = 10
    /// Protocol version 2: a hello's name is not the one its authenticated identity key gives.
    case identityMismatch = 11
    /// The authenticated key is not the one pinned for the hello's name here (§3.10).
    case identityPinned = 12
    /// The authenticated key is revoked (§3.11).
    case revoked = 13
    /// The link's password is being retired because of a revocation and its authenticated key is
    /// not pinned here (§3.11): a fresh key must join with the current password.
    case retiringPasswordUnknownKey = 14
    case unknown = 255
}

public struct Refuse: Equatable, Sendable {
    public static let maxTextBytes = 512
    public var code: RefuseCode
    public var text: String

    public init(code: RefuseCode, text: String) {
        self.code = code
        self.text = text
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u8(code.rawValue)
        w.append(Refuse.wireText(text))
        return w.bytes
    }

    /// Invalid UTF-8 reads as replacement characters (3 bytes each), and the result is cut as
    /// the encoder cuts, so a decoded text is never longer than `maxTextBytes` either.
    public static func decode(_ bytes: [UInt8]) throws -> Refuse {
        var r = ByteReader(bytes)
        let code = RefuseCode(rawValue: try r.u8("refuse code")) ?? .unknown
        let rest = r.rest()
        guard rest.count <= maxTextBytes else { throw WireError.tooLarge(what: "refuse text", count: rest.count, limit: maxTextBytes) }
        return Refuse(code: code, text: String(decoding: wireText(String(decoding: rest, as: UTF8.self)), as: UTF8.self))
    }

    /// The UTF-8 of `text`, cut at a character boundary to `maxTextBytes`.
    static func wireText(_ text: String) -> [UInt8] {
        var utf8 = Array(text.utf8.prefix(maxTextBytes))
        while String(validating: utf8, as: UTF8.self) == nil && !utf8.isEmpty { utf8.removeLast() }
        return utf8
    }
}

/// What each side tells the other in the handshake (§3.4).
public struct Hello: Equatable, Sendable {
    public static let format: UInt8 = 1
    public static let maxNicknameBytes = 64

    public var name: PeerName
    public var nickname: String
    public var uid: UInt64
    public var connectionId: UInt64
    public var gossipPort: UInt16
    public var sleevePort: UInt16
    public var shortId: UInt16
    public var trustsRemote: Bool
    public var fastdpCapable: Bool
    public var overlays: UInt8
    public var ciphers: UInt8

    public init(name: PeerName, nickname: String, uid: UInt64, connectionId: UInt64, gossipPort: UInt16, sleevePort: UInt16,
                shortId: UInt16, trustsRemote: Bool, fastdpCapable: Bool, overlays: UInt8, ciphers: UInt8) {
        self.name = name
        self.nickname = nickname
        self.uid = uid
        self.connectionId = connectionId
        self.gossipPort = gossipPort
        self.sleevePort = sleevePort
        self.shortId = shortId
        self.trustsRemote = trustsRemote
        self.fastdpCapable = fastdpCapable
        self.overlays = overlays
        self.ciphers = ciphers
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 48 + nickname.utf8.count)
        w.u8(Hello.format)
        w.peerName(name)
        w.str8(nickname, maxLength: Hello.maxNicknameBytes)
        w.u64(uid)
        w.u64(connectionId)
        w.u16(gossipPort)
        w.u16(sleevePort)
        w.u16(shortId)
        w.u8((trustsRemote ? 1 : 0) | (fastdpCapable ? 2 : 0))
        w.u8(overlays)
        w.u8(ciphers)
        return w.bytes
    }

    /// Trailing bytes after the known fields are ignored, so later versions can append fields.
    public static func decode(_ bytes: [UInt8]) throws -> Hello {
        var r = ByteReader(bytes)
        let format = try r.u8("hello format")
        guard format >= 1 else { throw WireError.invalid(what: "hello format \(format)") }
        let name = try r.peerName("hello name")
        let nickname = try r.str8("hello nickname", maxLength: maxNicknameBytes)
        let uid = try r.u64("hello uid")
        let connectionId = try r.u64("hello connection id")
        let gossipPort = try r.u16("hello gossip port")
        let sleevePort = try r.u16("hello sleeve port")
        let shortId = try r.u16("hello short id")
        guard shortId <= 0x0FFF else { throw WireError.invalid(what: "hello short id \(shortId)") }
        let flags = try r.u8("hello flags")
        let overlays = try r.u8("hello overlays")
        let ciphers = try r.u8("hello ciphers")
        return Hello(name: name, nickname: nickname, uid: uid, connectionId: connectionId, gossipPort: gossipPort,
                     sleevePort: sleevePort, shortId: shortId, trustsRemote: flags & 1 != 0, fastdpCapable: flags & 2 != 0,
                     overlays: overlays, ciphers: ciphers)
    }
}

/// Splits a byte stream into frames. Feed it what the socket delivered; it never buffers more
/// than one frame plus its header, and rejects a length over the cap before allocating for it.
public struct FrameDecoder {
    public var limit: Int
    private var buffer: [UInt8] = []

    public init(limit: Int) { self.limit = limit }

    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 { buffer.append(contentsOf: bytes) }

    /// The next complete frame body, nil when more bytes are needed.
    public mutating func next() throws -> [UInt8]? {
        guard buffer.count >= FrameLimits.headerSize else { return nil }
        let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        guard length > 0 else { throw WireError.invalid(what: "frame length 0") }
        guard length <= limit else { throw WireError.tooLarge(what: "frame", count: length, limit: limit) }
        guard buffer.count >= FrameLimits.headerSize + length else { return nil }
        let body = Array(buffer[FrameLimits.headerSize..<(FrameLimits.headerSize + length)])
        buffer.removeFirst(FrameLimits.headerSize + length)
        return body
    }

    /// Takes bytes that arrived before framing began (e.g. right after the preamble).
    public mutating func takeBuffered(_ count: Int) -> [UInt8]? {
        guard buffer.count >= count else { return nil }
        defer { buffer.removeFirst(count) }
        return Array(buffer[..<count])
    }

    public static func frame(_ body: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: body.count + FrameLimits.headerSize)
        w.u32(UInt32(body.count))
        w.append(body)
        return w.bytes
    }
}
