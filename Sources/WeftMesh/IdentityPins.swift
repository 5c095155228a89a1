// Trust on first use, then pinned: which identity key each peer name was first seen with, and
// the decision for a later sighting (docs/protocol.md §3.10). Pure: the router feeds it what
// handshakes and topology gossip claim, and acts on the decisions.
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

public struct IdentityPins: Equatable, Sendable {
    /// Peer name → the identity public key first seen with it.
    public private(set) var keys: [PeerName: [UInt8]] = [:]
    /// Revoked identity keys: only ever grows.
    public private(set) var revoked: Set<[UInt8]> = []
    /// (name, key) mismatches already reported, so each is logged once.
    private var reported: Set<Sighting> = []

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
            return (decision, reported.insert(Sighting(name: name, key: key)).inserted)
        }
    }

    /// Adds a revocation (add-only: nothing removes one).
    public mutating func revoke(_ key: [UInt8]) {
        revoked.insert(key)
    }

    public static func == (a: IdentityPins, b: IdentityPins) -> Bool { a.keys == b.keys && a.revoked == b.revoked }
}
