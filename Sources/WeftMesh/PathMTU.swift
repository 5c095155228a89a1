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
