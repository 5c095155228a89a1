import WeftWire

// Unicast and broadcast routes over the topology graph (docs/protocol.md §4.1).

/// The undirected graph of mutual established connections, with each adjacency list in ascending
/// name order so that every router's breadth-first searches agree.
struct MeshGraph: Sendable, Equatable {
    let adjacency: [PeerName: [PeerName]]

    /// An edge A–B exists when A lists B *and* B lists A as established. Self-loops, peers missing
    /// from the topology and repeated entries are ignored.
    init(peers: [PeerName: PeerEntry]) {
        var established: [PeerName: Set<PeerName>] = [:]
        established.reserveCapacity(peers.count)
        for (name, entry) in peers {
            var remotes = Set<PeerName>()
            for c in entry.connections where c.established && c.remote != name { remotes.insert(c.remote) }
            established[name] = remotes
        }
        var adjacency: [PeerName: [PeerName]] = [:]
        adjacency.reserveCapacity(peers.count)
        for (name, remotes) in established {
            adjacency[name] = remotes.filter { established[$0]?.contains(name) ?? false }.sorted()
        }
        self.adjacency = adjacency
    }

    /// Breadth-first search from `root`, neighbours in ascending name order: the parent of every
    /// reached peer (the root has none) and the order peers were reached in. O(V + E).
    func bfs(from root: PeerName) -> (parent: [PeerName: PeerName], order: [PeerName]) {
        guard adjacency[root] != nil else { return ([:], []) }
        var parent: [PeerName: PeerName] = [:]
        var visited: Set<PeerName> = [root]
        var order: [PeerName] = [root]
        var head = 0
        while head < order.count {
            let node = order[head]
            head += 1
            for next in adjacency[node] ?? [] where !visited.contains(next) {
                visited.insert(next)
                parent[next] = node
                order.append(next)
            }
        }
        return (parent, order)
    }
}

/// Where this router sends packets: computed by `Topology.routes()`.
public struct Routes: Sendable, Equatable {
    /// The router these routes belong to.
    public let local: PeerName
    /// Destination → next hop, for every peer reachable from `local` (never `local` itself).
    public let unicast: [PeerName: PeerName]
    let graph: MeshGraph

    init(local: PeerName, graph: MeshGraph) {
        self.local = local
        self.graph = graph
        let (parent, order) = graph.bfs(from: local)
        var unicast: [PeerName: PeerName] = [:]
        unicast.reserveCapacity(order.count)
        // `order` is breadth-first, so a peer's parent already has its next hop.
        for node in order.dropFirst() {
            let p = parent[node]!
            unicast[node] = p == local ? node : unicast[p]!
        }
        self.unicast = unicast
    }

    /// The neighbour to send a packet for `destination` to; nil when unreachable or `local`.
    public func nextHop(to destination: PeerName) -> PeerName? { unicast[destination] }

    /// The peers this router forwards a broadcast originated by `source` to: its children in the
    /// breadth-first tree rooted at `source`, in ascending name order. Empty when `source` is
    /// not in the graph or this router is not in its tree. Computed on demand, O(V + E).
    public func broadcastNextHops(from source: PeerName) -> [PeerName] {
        if source == local { return graph.adjacency[local] ?? [] }
        let (parent, _) = graph.bfs(from: source)
        guard parent[local] != nil else { return [] }
        return (graph.adjacency[local] ?? []).filter { parent[$0] == local }
    }

    /// Every peer reachable from this router over mutual established connections, including
    /// this router itself.
    public var reachable: Set<PeerName> { Set(unicast.keys).union([local]) }
}
