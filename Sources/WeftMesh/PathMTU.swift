import WeftWire

// The overlay MTU of a whole route, not only of its first hop (docs/protocol.md §4.5). Each
// router gossips, per connection, the MTU its path-MTU probing settled on (`ConnectionEntry.mtu`);
// a router takes the smallest along its unicast route to each destination. Pure.

public enum PathMTU {
    /// The MTU of the hop `from` → `to`: what `from` reports for its connection to `to`, else what
    /// `to` reports for the way back (underlay links are nearly always symmetric); nil when
    /// neither has measured it yet.
    static func hop(_ from: PeerName, _ to: PeerName, peers: [PeerName: PeerEntry]) -> Int? {
        func reported(_ a: PeerName, _ b: PeerName) -> Int? {
            peers[a]?.connections.first { $0.remote == b && $0.established && $0.mtu != nil }?.mtu
        }
        return reported(from, to) ?? reported(to, from)
    }

    /// Which value a connection publishes after a probing round that measured `round`:
    /// the first measurement at once (a new link needs its figure now), afterwards a new value
    /// only when two rounds in a row agree on it, so one lost probe does not make the whole mesh
    /// recompute. `previousRound` is the measurement of the round before.
    public static func settle(published: Int?, previousRound: Int?, round: Int) -> Int? {
        guard let published else { return round }
        return round != published && round == previousRound ? round : published
    }
}

extension Routes {
    /// For every destination reachable from `local`: the smallest MTU along its unicast route
    /// (the breadth-first tree of docs/protocol.md §4.1). The first hop's MTU is taken from
    /// `firstHop` when it has the neighbour (this router's own live measurement), else from the
    /// gossip. Hops nobody has measured yet do not limit; a destination none of whose hops is
    /// known is left out. O(V + E).
    ///
    /// Relays route by their own trees, which may pick another path of the same length; a frame
    /// that then still does not fit is answered by the relay (docs/protocol.md §5.4).
    public func pathMTU(peers: [PeerName: PeerEntry], firstHop: [PeerName: Int] = [:]) -> [PeerName: Int] {
        let (parent, order) = graph.bfs(from: local)
        var result: [PeerName: Int] = [:]
        result.reserveCapacity(order.count)
        for node in order.dropFirst() {
            let p = parent[node]!
            let hop = p == local ? (firstHop[node] ?? PathMTU.hop(p, node, peers: peers)) : PathMTU.hop(p, node, peers: peers)
            switch (result[p], hop) {
            case let (before?, hop?): result[node] = min(before, hop)
            case let (before?, nil): result[node] = before
            case let (nil, hop?): result[node] = hop
            case (nil, nil): break
            }
        }
        return result
    }
}

/// When one connection probes its path MTU, and with which sizes (docs/protocol.md §5.4). Each
/// connection keeps its own clock: a new link is probed without probing every other link again
/// (a router joining a mesh of 100 gets a new link every few hundred milliseconds, and a round
/// to all of them each time was most of the sleeve traffic of the join), and the rounds of
/// different links spread over the interval instead of leaving in one burst. Once a full round
/// has measured the path, a round probes only the current size and the candidates above it (one
/// packet on a path at the top of the ladder); if none of those is answered the path may have
/// shrunk, and a full round follows at once. Until a round has been answered at all (the peer's
/// session may not be up when the first one leaves), unanswered rounds are retried after 1, 2,
/// 4, 8 s: a new link's figure must not wait a whole interval, while a dead path costs one full
/// round per interval. Seconds of a monotonic clock. Pure.
public struct ProbeSchedule: Sendable, Equatable {
    /// The first round after the connection came up.
    public static let firstDelay = 0.5
    /// Between the rounds of one connection, times a random factor in [0.9, 1.1].
    public static let interval = 10.0
    /// How long a round waits for its answers.
    public static let wait = 1.5
    /// A full round after a reduced one that nothing answered.
    public static let recheckDelay = 0.5
    /// The first retry of a connection none of whose rounds was answered yet; doubled each time
    /// up to the interval.
    public static let unmeasuredRetry = 1.0

    /// When the next round starts; nil while one waits for its answers.
    public private(set) var nextRound: Double?
    /// When the round under way ends; nil when none is.
    public private(set) var resultsDue: Double?
    /// Whether the next (or current) round probes the whole ladder.
    public private(set) var full = true
    /// Whether any round of this connection was answered.
    public private(set) var measured = false
    /// Unanswered rounds before the first answered one.
    private var unansweredRounds = 0

    public init(connectedAt now: Double) {
        nextRound = now + Self.firstDelay
    }

    /// Starts a round when one is due: true if the caller should send it now, with the sizes of
    /// `sizes(ladder:current:)`.
    public mutating func startRound(now: Double) -> Bool {
        guard let next = nextRound, now >= next else { return false }
        nextRound = nil
        resultsDue = now + Self.wait
        return true
    }

    /// Whether the round under way has waited long enough for its answers.
    public func resultsAreDue(now: Double) -> Bool {
        resultsDue.map { now >= $0 } ?? false
    }

    /// Ends the round under way; `answered` when any probe of it was acknowledged.
    /// `randomUnit` in [0, 1) spreads the next round (NaN counts as 0.5).
    public mutating func endRound(now: Double, answered: Bool, randomUnit: Double) {
        guard resultsDue != nil else { return }
        resultsDue = nil
        let unit = randomUnit.isNaN ? 0.5 : min(max(randomUnit, 0), 1)
        if answered { measured = true }
        if !measured {
            let retry = Self.unmeasuredRetry * Double(1 << min(unansweredRounds, 8))
            unansweredRounds += 1
            nextRound = now + min(retry, Self.interval * (0.9 + 0.2 * unit))
            return
        }
        if !full && !answered {
            full = true
            nextRound = now + Self.recheckDelay
            return
        }
        // A full round that nothing answered says nothing about size (a dead path is the
        // heartbeats' business): the next one is full too, at the normal interval.
        full = !answered
        nextRound = now + Self.interval * (0.9 + 0.2 * unit)
    }

    /// The UDP payload sizes of the current round. `ladder`: every candidate's payload size
    /// (docs/protocol.md §5.4); `current`: the connection's path payload now. A reduced round
    /// is `current` and the candidates above it, largest first.
    public func sizes(ladder: [Int], current: Int) -> [Int] {
        let all = Set(ladder).sorted(by: >)
        guard !full else { return all }
        return Set(all.filter { $0 > current } + [current]).sorted(by: >)
    }
}
