// Request and answer bodies of the control API that the CLI shares with the router (the status
// documents are in Status.swift). Field names are a public contract, like the status documents'.
import Foundation

public struct AttachRequest: Codable, Sendable {
    /// Exactly one of `namespace` (as in `ip netns add NAME`) and `pid`.
    public var namespace: String?
    public var pid: Int32?
    /// Nil: the router allocates one from `--ipalloc-range`.
    public var cidr: String?
    /// Interface name inside the workload (default `ethwe`).
    public var ifname: String?

    public init(namespace: String?, pid: Int32?, cidr: String?, ifname: String?) {
        self.namespace = namespace
        self.pid = pid
        self.cidr = cidr
        self.ifname = ifname
    }
}

public struct DetachRequest: Codable, Sendable {
    public var namespace: String?
    public var pid: Int32?

    public init(namespace: String?, pid: Int32?) {
        self.namespace = namespace
        self.pid = pid
    }
}

public struct CIDRRequest: Codable, Sendable {
    /// Nil (expose only): the router allocates one from `--ipalloc-range`.
    public var cidr: String?
    public init(cidr: String?) { self.cidr = cidr }
}

/// One attached workload, as `weft ps` and the attach answer show it.
public struct Workload: Codable, Sendable, Equatable {
    public var namespace: String?
    public var pid: Int32?
    public var ifname: String
    public var hostIfname: String
    /// The MAC of `ifname` inside the workload, as its neighbours on the overlay see it.
    public var mac: String?
    public var cidrs: [String]

    enum CodingKeys: String, CodingKey { case namespace, pid, ifname, hostIfname, mac, cidrs }

    public init(namespace: String?, pid: Int32?, ifname: String, hostIfname: String, mac: String? = nil, cidrs: [String]) {
        self.namespace = namespace
        self.pid = pid
        self.ifname = ifname
        self.hostIfname = hostIfname
        self.mac = mac
        self.cidrs = cidrs
    }

    /// Absent values are written as `null`, as in the other status documents.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(namespace, forKey: .namespace)
        try c.encode(pid, forKey: .pid)
        try c.encode(ifname, forKey: .ifname)
        try c.encode(hostIfname, forKey: .hostIfname)
        try c.encode(mac, forKey: .mac)
        try c.encode(cidrs, forKey: .cidrs)
    }
}

/// The answer to attach/detach/expose/hide: a sentence for the operator, and the workload for
/// attach.
public struct WorkloadResult: Codable, Sendable {
    public var result: String
    public var workload: Workload?

    public init(result: String, workload: Workload?) {
        self.result = result
        self.workload = workload
    }
}

/// `weft rotate-key [PEER]`; no peer rotates every connection.
public struct PeerRequest: Codable, Sendable {
    public var peer: String?
    public init(peer: String?) { self.peer = peer }
}

/// A password to add or rotate to, as 64 hex digits.
public struct PSKRequest: Codable, Sendable {
    public var psk: String
    public var graceSeconds: Double?
    public init(psk: String, graceSeconds: Double?) {
        self.psk = psk
        self.graceSeconds = graceSeconds
    }
}

public struct PasswordIdRequest: Codable, Sendable {
    public var id: String
    public init(id: String) { self.id = id }
}

/// One link's answer to `weft rotate-key`.
public struct RotateKeyResult: Codable, Sendable {
    public var peer: String
    public var nickname: String
    public var oldEpoch: Int
    public var newEpoch: Int
    public var result: String

    public init(peer: String, nickname: String, oldEpoch: Int, newEpoch: Int, result: String) {
        self.peer = peer
        self.nickname = nickname
        self.oldEpoch = oldEpoch
        self.newEpoch = newEpoch
        self.result = result
    }
}

/// The answer to `weft rotate-password`: which known peers acknowledged the new password.
public struct RotatePasswordResult: Codable, Sendable {
    public var id: String
    public var previousId: String?
    public var acknowledged: [String]
    public var missing: [String]
    public var retireAt: String?

    public init(id: String, previousId: String?, acknowledged: [String], missing: [String], retireAt: String?) {
        self.id = id
        self.previousId = previousId
        self.acknowledged = acknowledged
        self.missing = missing
        self.retireAt = retireAt
    }
}

/// A keyring entry's state, as the keyring stores it and `weft password list` shows it.
public enum KeyState: String, Codable, Sendable {
    /// Used for new handshakes (exactly one entry when a password is set).
    case active
    /// Still accepted from peers (during a rotation's grace period).
    case accepted
    /// No longer accepted: a handshake under it is refused with "unknown password id".
    case retired
}

/// What `weft password list --json` shows of an entry: never the key.
public struct PasswordInfo: Codable, Sendable, Equatable {
    public var id: String
    public var state: KeyState
    public var addedAt: String
    public var retireAt: String?

    public init(id: String, state: KeyState, addedAt: String, retireAt: String?) {
        self.id = id
        self.state = state
        self.addedAt = addedAt
        self.retireAt = retireAt
    }
}

/// `weft ipam --json`: the pool and each router's share of it (docs/protocol.md §7).
public struct IPAMStatus: Codable, Sendable, Equatable {
    public var range: String
    public var seeded: Bool
    /// Who divided the range first, and the ballot (`NAME/ROUND`).
    public var seed: String?
    public var consensusSize: Int
    public var shares: [IPAMShare]
    /// Peers whose pool this router refused to merge, and why.
    public var refusedPools: [String: String]

    public init(range: String, seeded: Bool, seed: String?, consensusSize: Int, shares: [IPAMShare], refusedPools: [String: String]) {
        self.range = range
        self.seeded = seeded
        self.seed = seed
        self.consensusSize = consensusSize
        self.shares = shares
        self.refusedPools = refusedPools
    }
}

/// One router's part of the range.
public struct IPAMShare: Codable, Sendable, Equatable {
    public var name: String
    public var nickname: String?
    public var isSelf: Bool
    /// False: the router is not reachable; its space stays its own until `weft rmpeer`.
    public var reachable: Bool
    public var blocks: Int
    /// Usable addresses in those blocks (the range's first and last are never handed out);
    /// a string-free integer that saturates for very large IPv6 shares.
    public var addresses: UInt64
    public var used: Int
    public var free: UInt64

    public init(name: String, nickname: String?, isSelf: Bool, reachable: Bool, blocks: Int, addresses: UInt64, used: Int, free: UInt64) {
        self.name = name
        self.nickname = nickname
        self.isSelf = isSelf
        self.reachable = reachable
        self.blocks = blocks
        self.addresses = addresses
        self.used = used
        self.free = free
    }
}

/// `weft revoke PEER`: the peer as a name, nickname or fingerprint (docs/protocol.md §3.11), and
/// the password the mesh moves to (64 hex digits of PSK; absent: the router generates one).
public struct RevokeRequest: Codable, Sendable {
    public var peer: String
    public var psk: String?
    public var graceSeconds: Double?
    public init(peer: String, psk: String?, graceSeconds: Double?) {
        self.peer = peer
        self.psk = psk
        self.graceSeconds = graceSeconds
    }
}

/// One revocation as `weft revoke --list --json` shows it.
public struct RevocationStatus: Codable, Sendable, Equatable {
    /// The peer name the revoked key gives, and its nickname when it was revoked.
    public var name: String
    public var nickname: String
    /// The fingerprint of the revoked identity key (the form of `weft status`).
    public var identity: String
    /// The router on which `weft revoke` ran.
    public var revokedBy: String
    /// When (ISO 8601, UTC), by the revoking router's clock.
    public var at: String

    public init(name: String, nickname: String, identity: String, revokedBy: String, at: String) {
        self.name = name
        self.nickname = nickname
        self.identity = identity
        self.revokedBy = revokedBy
        self.at = at
    }
}

/// The answer to `weft revoke PEER`: what was revoked, which links here closed, and the password
/// rotation that followed (nil when none ran: `rotation` then says why in `rotationSkipped`).
public struct RevokeResult: Codable, Sendable {
    public var revoked: RevocationStatus
    public var closedLinks: Int
    public var rotation: RotatePasswordResult?
    public var rotationSkipped: String?

    public init(revoked: RevocationStatus, closedLinks: Int, rotation: RotatePasswordResult?, rotationSkipped: String?) {
        self.revoked = revoked
        self.closedLinks = closedLinks
        self.rotation = rotation
        self.rotationSkipped = rotationSkipped
    }
}
