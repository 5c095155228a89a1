// Trust on first use, then pinned: which identity key each peer name was first seen with, and
// the decision for a later sighting (docs/protocol.md §3.10). Pure: the router feeds it what
// handshakes and topology gossip claim (`check`), persists the pins and acts on the decisions.
import WeftWire

public enum PinDecision: Equatable, Sendable {
    /// No key was pinned for this name: it is pinned now.
    case firstSight
    /// The pinned key: accept.
    case sameKey
    /// Another key than the pinned one: refuse (an impostor, or a router whose key was replaced).
    case otherKey(pinned: [UInt8])
    /// A revoked key: refuse, whatever the name and whatever was pinned.
    case revoked
}

/// Why a claimed (name, key) is refused.
public enum PinRefusal: Equatable, Sendable {
    /// The key does not derive the name (docs/protocol.md §1): a forged or damaged claim.
    case nameNotDerived
    /// The name is pinned to another key.
    case otherKey(pinned: [UInt8])
    /// The key is revoked.
    case revoked
}

/// The outcome of `IdentityPins.check`.
public enum PinCheck: Equatable, Sendable {
    /// Accepted; `firstSight`: the key was pinned just now (the router saves the pins).
    case accepted(firstSight: Bool)
    /// Refused; `firstReport`: the first refusal of this (name, key) (of this name for
    /// `nameNotDerived`), to log and show once.
    case refused(PinRefusal, firstReport: Bool)

    public var isAccepted: Bool { if case .accepted = self { return true } else { return false } }
}

public struct IdentityPins: Equatable, Sendable {
    /// Peer name → the identity public key first seen with it.
    public private(set) var keys: [PeerName: [UInt8]] = [:]
    /// Revoked identity keys: only ever grows.
    public private(set) var revoked: Set<[UInt8]> = []
    /// (name, key) mismatches already reported, so each is logged once.
    private var reported: Set<Sighting> = []
    /// Names claimed with a key that does not derive them, already reported (once per name: a
    /// forger can make keys without end, not names it does not hold).
    private var reportedNames: Set<PeerName> = []
    /// Past this many reports of each kind, refusals are still refused and counted but no longer
    /// reported: a peer gossiping made-up claims cannot grow the memory or the log without end.
    public static let maxReports = 4096

    private struct Sighting: Hashable, Sendable {
        let name: PeerName
        let key: [UInt8]
    }

    public init(keys: [PeerName: [UInt8]] = [:], revoked: Set<[UInt8]> = []) {
        self.keys = keys
        self.revoked = revoked
    }

    /// The decision for `key` claiming `name`, without changing anything.
    public func decide(name: PeerName, key: [UInt8]) -> PinDecision {
        if revoked.contains(key) { return .revoked }
        guard let pinned = keys[name] else { return .firstSight }
        return pinned == key ? .sameKey : .otherKey(pinned: pinned)
    }

    /// Decides, pins on first sight, and says whether this refusal is the first of its kind (to
    /// log and show once); `firstReport` is false for acceptances.
    public mutating func observe(name: PeerName, key: [UInt8]) -> (decision: PinDecision, firstReport: Bool) {
        let decision = decide(name: name, key: key)
        switch decision {
        case .firstSight:
            keys[name] = key
            return (decision, false)
        case .sameKey:
            return (decision, false)
        case .otherKey, .revoked:
            return (decision, reportOnce(Sighting(name: name, key: key)))
        }
    }

    private mutating func reportOnce(_ sighting: Sighting) -> Bool {
        guard reported.count < Self.maxReports || reported.contains(sighting) else { return false }
        return reported.insert(sighting).inserted
    }

    /// The whole check of a claim that `key` is `name`'s, from gossip or a handshake: the key must
    /// derive the name (docs/protocol.md §1; `derivedName` computes it, with WeftCrypto, only when
    /// the key is not the one already pinned), then `observe`. A refusal changes no pin.
    public mutating func check(name: PeerName, key: [UInt8], derivedName: () -> PeerName) -> PinCheck {
        // The pinned key was checked when it was pinned (or loaded): no hash on the common path.
        if keys[name] == key, !revoked.contains(key) { return .accepted(firstSight: false) }
        guard derivedName() == name else {
            return .refused(.nameNotDerived, firstReport: reportedNames.count < Self.maxReports && reportedNames.insert(name).inserted)
        }
        let (decision, firstReport) = observe(name: name, key: key)
        switch decision {
        case .firstSight: return .accepted(firstSight: true)
        case .sameKey: return .accepted(firstSight: false)
        case .otherKey(let pinned): return .refused(.otherKey(pinned: pinned), firstReport: firstReport)
        case .revoked: return .refused(.revoked, firstReport: firstReport)
        }
    }

    /// Pins a key read back from the pin file (already checked against its name by the reader).
    public mutating func restore(name: PeerName, key: [UInt8]) {
        keys[name] = key
    }

    /// Adds a revocation (add-only: nothing removes one).
    public mutating func revoke(_ key: [UInt8]) {
        revoked.insert(key)
    }

    public static func == (a: IdentityPins, b: IdentityPins) -> Bool { a.keys == b.keys && a.revoked == b.revoked }
}
