// Messages of session rekeying and password rotation on the sealed gossip link
// (docs/protocol.md §3.7, §3.8).

/// REKEY_INIT: start epoch `epoch`; `pskId` all zero keeps the link's password, otherwise the
/// link moves to that password (the responder must hold it as active or accepted).
public struct RekeyInit: Equatable, Sendable {
    public var epoch: UInt8
    public var pskId: [UInt8]
    public var ephemeral: [UInt8]

    public init(epoch: UInt8, pskId: [UInt8], ephemeral: [UInt8]) {
        self.epoch = epoch
        self.pskId = pskId
        self.ephemeral = ephemeral
    }

    public func encode() -> [UInt8] { [epoch] + pskId + ephemeral }

    public static func decode(_ bytes: [UInt8]) throws -> RekeyInit {
        var r = ByteReader(bytes)
        return RekeyInit(epoch: try r.u8("rekey epoch"), pskId: try r.bytes(8, "rekey psk id"), ephemeral: try r.bytes(32, "rekey ephemeral"))
    }
}

/// REKEY_RESP: status 0 accepts (with the responder's ephemeral), 1 refuses an unknown PSK id.
public struct RekeyResponse: Equatable, Sendable {
    public static let accepted: UInt8 = 0
    public static let unknownPSK: UInt8 = 1

    public var epoch: UInt8
    public var status: UInt8
    public var ephemeral: [UInt8]

    public init(epoch: UInt8, status: UInt8, ephemeral: [UInt8]) {
        self.epoch = epoch
        self.status = status
        self.ephemeral = ephemeral
    }

    public func encode() -> [UInt8] { [epoch, status] + ephemeral }

    public static func decode(_ bytes: [UInt8]) throws -> RekeyResponse {
        var r = ByteReader(bytes)
        return RekeyResponse(epoch: try r.u8("rekey epoch"), status: try r.u8("rekey status"), ephemeral: try r.bytes(32, "rekey ephemeral"))
    }
}

/// PASSWORD_OFFER: a new PSK for the receiver's keyring (as accepted), from a rotation.
/// PASSWORD_ACK: the PSK id the receiver now holds. PASSWORD_USE: make `newId` active, rekey
/// links under it, and retire `oldId` after `graceSeconds`; `flags` bit 0 (`pinnedOnly`): the
/// rotation follows a revocation, so during the grace `oldId` is accepted only from identity
/// keys already pinned (docs/protocol.md §3.8, §3.11).
public struct PasswordOffer: Equatable, Sendable {
    public var psk: [UInt8]
    public init(psk: [UInt8]) { self.psk = psk }
    public func encode() -> [UInt8] { psk }
    public static func decode(_ bytes: [UInt8]) throws -> PasswordOffer {
        var r = ByteReader(bytes)
        return PasswordOffer(psk: try r.bytes(32, "offered psk"))
    }
}

public struct PasswordUse: Equatable, Sendable {
    /// The longest grace the message carries (a u32 of seconds, about 136 years).
    public static let maxGraceSeconds = Double(UInt32.max)

    /// `seconds` as the message carries it: whole seconds, negatives as 0, beyond the u32 as its
    /// maximum (a grace is never a reason to trap).
    public static func wireGrace(_ seconds: Double) -> UInt32 {
        guard seconds > 0 else { return 0 }
        return seconds >= maxGraceSeconds ? UInt32.max : UInt32(seconds)
    }

    /// Bit 0 of `flags`.
    public static let pinnedOnlyFlag: UInt8 = 1

    public var newId: [UInt8]
    public var oldId: [UInt8]
    public var graceSeconds: UInt32
    /// Bit 0: `pinnedOnly`; the other bits are sent as 0 and ignored.
    public var flags: UInt8

    public init(newId: [UInt8], oldId: [UInt8], graceSeconds: UInt32, pinnedOnly: Bool = false) {
        self.newId = newId
        self.oldId = oldId
        self.graceSeconds = graceSeconds
        self.flags = pinnedOnly ? Self.pinnedOnlyFlag : 0
    }

    /// The old password is retired because of a revocation: during the grace it is accepted
    /// only from identity keys pinned here (REFUSE 14 for others).
    public var pinnedOnly: Bool { flags & Self.pinnedOnlyFlag != 0 }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.append(newId)
        w.append(oldId)
        w.u32(graceSeconds)
        w.u8(flags)
        return w.bytes
    }

    /// Exactly 21 bytes: a short message or bytes after the flags are malformed.
    public static func decode(_ bytes: [UInt8]) throws -> PasswordUse {
        var r = ByteReader(bytes)
        var use = PasswordUse(newId: try r.bytes(8, "new psk id"), oldId: try r.bytes(8, "old psk id"), graceSeconds: try r.u32("grace"))
        use.flags = try r.u8("password use flags")
        guard r.isAtEnd else { throw WireError.invalid(what: "password use (\(r.remaining) bytes after the flags)") }
        return use
    }
}
