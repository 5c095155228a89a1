import WeftWire

// Connection rules of docs/protocol.md §3.9 and §4.4 that need no clock: reconnect backoff,
// which of two simultaneous connections survives, and when a learned peer is first dialed.

/// Delay before the next dial attempt: `min(cap, base × 2^(failures−1))` times a random factor
/// in [0.75, 1.25].
public struct Backoff: Sendable, Equatable {
    public let base: Double
    public let cap: Double

    /// Ordinary failures: 1 s, doubling, at most 60 s.
    public init(base: Double = 1, cap: Double = 60) {
        self.base = base
        self.cap = cap
    }

    /// After a wrong password the delay starts at 15 s.
    public static let wrongPassword = Backoff(base: 15, cap: 60)

    /// Seconds to wait after `failures` consecutive failures (0 when there was none).
    /// `randomUnit` in [0, 1) maps linearly to the factor [0.75, 1.25); values outside [0, 1]
    /// are clamped (1 gives 1.25) and NaN counts as 0.5.
    public func delay(afterFailures failures: Int, randomUnit: Double) -> Double {
        guard failures > 0 else { return 0 }
        // 2^62 is past any sensible cap; the exponent is bounded so the power stays finite.
        let doubling = Double(sign: .plus, exponent: min(failures - 1, 62), significand: 1)
        return Self.spread(min(cap, base * doubling), randomUnit: randomUnit)
    }

    /// `seconds` times a factor in [0.75, 1.25], linear in `randomUnit` (clamped to [0, 1], NaN
    /// counts as 0.5): routers started together do not retry in step.
    static func spread(_ seconds: Double, randomUnit: Double) -> Double {
        let unit = randomUnit.isNaN ? 0.5 : min(max(randomUnit, 0), 1)
        return seconds * (0.75 + 0.5 * unit)
    }
}

public enum DuplicateConnections {
    /// Which of two connections between `local` and `remote` survives (§3.9: the one dialed by the
    /// peer with the smaller name): true if the one `local` dialed (outbound) is kept. Both ends
    /// evaluate it with the names swapped and agree. For `local == remote` (a connection to self,
    /// refused anyway) it returns false.
    public static func keepOutbound(local: PeerName, remote: PeerName) -> Bool {
        local < remote
    }

    /// What admission does with a new connection to `remote` while an established one exists.
    public enum Resolution: Equatable, Sendable {
        /// Refuse the new connection (REFUSE 5): the established one is kept.
        case refuseNew
        /// Close the established connection (REFUSE 5) for this reason and admit the new one.
        case replaceExisting(because: String)
    }

    /// §3.9: a new UID means the peer restarted, and the new connection always wins. With the
    /// same UID, a connection dialed by the same side as the established one also wins: a router
    /// never dials a peer it holds an established link to, so that side has lost the link (its
    /// NAT mapping or address changed, the link timed out at its end) and the established one is
    /// dead. Only crossing dials (one each way) are left to the rule of `keepOutbound`.
    /// `existingUID` is nil when unknown.
    public static func resolve(local: PeerName, remote: PeerName, newIsOutbound: Bool, existingIsOutbound: Bool,
                               existingUID: UInt64?, newUID: UInt64) -> Resolution {
        if existingUID != newUID { return .replaceExisting(because: "peer restarted") }
        if newIsOutbound == existingIsOutbound { return .replaceExisting(because: "dialed again by the side that dialed it: the link was lost there") }
        return newIsOutbound == keepOutbound(local: local, remote: remote)
            ? .replaceExisting(because: "duplicate connection to \(remote); keeping the other one") : .refuseNew
    }
}

/// Connection attempts (docs/protocol.md §4.4): how many at once, and when a peer learned from
/// gossip is first dialed.
public enum DialRules {
    /// Connection attempts in flight at once (TCP connect or handshake not finished): a router
    /// that learns a hundred peers at once must not time out its own connects.
    public static let maxConcurrent = 16
    /// Seconds the side with the larger name waits before it first dials a peer learned from
    /// gossip, times a random factor in [0.75, 1.25]. Kept short: where only that side can
    /// dial (the other is behind NAT), this is how much later the link comes up.
    public static let learnedPeerDeferral = 4.0

    /// Two routers usually learn of each other from the same update, and dialing both at once
    /// costs two handshakes, a refusal, and when both complete an established link replaced:
    /// another version of both entries for the whole mesh (#12). So the side whose dial the
    /// duplicate rule keeps (the smaller name, `DuplicateConnections.keepOutbound`) dials a
    /// learned peer at once, and the other waits and dials only if no link came up meanwhile.
    /// Addresses named by an operator are never deferred (the caller does not ask).
    /// `randomUnit` spreads the wait as in `Backoff`.
    public static func firstAttemptDelay(local: PeerName, remote: PeerName, randomUnit: Double) -> Double {
        guard !DuplicateConnections.keepOutbound(local: local, remote: remote) else { return 0 }
        return Backoff.spread(learnedPeerDeferral, randomUnit: randomUnit)
    }
}
