import WeftWire

// Unicast and broadcast routes over the topology graph (docs/protocol.md §4.1).

/// The undirected graph of mutual established connections (docs/protocol.md §4.1), kept up to
/// date one entry at a time: an edge A–B exists when A lists B *and* B lists A as established.
/// Self-loops, peers without an entry and repeated connections make no edge. Peers are slots
/// (small integers) so that a breadth-first search over a thousand routers touches arrays, not
/// hash tables; each adjacency list is in ascending name order, so every router's searches agree.
struct MeshGraph: Sendable, Equatable {
    private(set) var slots: [PeerName: Int32] = [:]
    private(set) var names: [PeerName] = []
    /// What each slot's entry lists as established (slots).
    private var listed: [Set<Int32>] = []
    /// Mutual neighbours of each slot, ascending by name.
    private(set) var adjacency: [[Int32]] = []

    init() {}

    /// The graph of `peers` at once.
    init(peers: [PeerName: PeerEntry]) {
        for (name, entry) in peers { update(name, entry) }
    }

    /// Sets what `name` lists; nil when its entry is gone.
    mutating func update(_ name: PeerName, _ entry: PeerEntry?) {
        let s = slot(for: name)
        var now = Set<Int32>()
        for c in entry?.connections ?? [] where c.established && c.remote != name { now.insert(slot(for: c.remote)) }
        let before = listed[Int(s)]
        guard now != before else { return }
        listed[Int(s)] = now
        for r in before.union(now) { setEdge(s, r, now.contains(r) && listed[Int(r)].contains(s)) }
    }

    private mutating func slot(for name: PeerName) -> Int32 {
        if let s = slots[name] { return s }
        let s = Int32(names.count)
        slots[name] = s
        names.append(name)
        listed.append([])
        adjacency.append([])
        return s
    }

    private mutating func setEdge(_ a: Int32, _ b: Int32, _ on: Bool) {
        for (x, y) in [(a, b), (b, a)] {
            let i = insertionPoint(of: y, in: adjacency[Int(x)])
            let present = i < adjacency[Int(x)].count && adjacency[Int(x)][i] == y
            if on && !present { adjacency[Int(x)].insert(y, at: i) }
            if !on && present { adjacency[Int(x)].remove(at: i) }
        }
    }

    private func insertionPoint(of s: Int32, in list: [Int32]) -> Int {
        var lo = 0, hi = list.count
        let name = names[Int(s)]
        while lo < hi {
            let mid = (lo + hi) / 2
            if names[Int(list[mid])] < name { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The mutual neighbours of `name`, ascending.
    func neighbours(of name: PeerName) -> [PeerName] {
        guard let s = slots[name] else { return [] }
        return adjacency[Int(s)].map { names[Int($0)] }
    }

    /// Breadth-first search from `root`, neighbours in ascending name order: each reached slot's
    /// parent (-1 for the root and the unreached) and the order slots were reached in. When
    /// `stopWhenReached` is given, the search ends once all of those slots have a parent.
    /// O(V + E).
    func bfs(from root: Int32, stopWhenReached targets: [Int32]? = nil) -> (parent: [Int32], order: [Int32]) {
        let n = names.count
        // A slot is visited once its parent is set (the root is marked by itself).
        var parent = [Int32](repeating: -1, count: n)
        var order = [Int32](repeating: 0, count: n)
        var wanted = [Bool](repeating: false, count: targets == nil ? 0 : n)
        var remaining = -1
        if let targets {
            remaining = 0
            for t in targets where t != root && !wanted[Int(t)] {
                wanted[Int(t)] = true
                remaining += 1
            }
        }
        var count = 1
        // Raw buffers: this loop runs for every gossip message a router forwards.
        parent.withUnsafeMutableBufferPointer { parent in
            order.withUnsafeMutableBufferPointer { order in
                wanted.withUnsafeBufferPointer { wanted in
                    adjacency.withUnsafeBufferPointer { adjacency in
                        parent[Int(root)] = root
                        order[0] = root
                        var head = 0
                        while head < count, remaining != 0 {
                            let node = order[head]
                            head += 1
                            adjacency[Int(node)].withUnsafeBufferPointer { neighbours in
                                for next in neighbours where parent[Int(next)] < 0 {
                                    parent[Int(next)] = node
                                    order[count] = next
                                    count += 1
                                    if remaining > 0, wanted[Int(next)] { remaining -= 1 }
                                }
                            }
                        }
                        parent[Int(root)] = -1
                    }
                }
            }
        }
        order.removeLast(n - count)
        return (parent, order)
    }

    /// Breadth-first search by name (for tests): parents and order as names.
    func bfs(from root: PeerName) -> (parent: [PeerName: PeerName], order: [PeerName]) {
        guard let s = slots[root] else { return ([:], []) }
        let (parent, order) = bfs(from: s)
        var byName: [PeerName: PeerName] = [:]
        for n in order.dropFirst() { byName[names[Int(n)]] = names[Int(parent[Int(n)])] }
        return (byName, order.map { names[Int($0)] })
    }

    /// `local`'s children in the breadth-first tree rooted at `source`, ascending: the
    /// neighbours a broadcast from `source` goes on to. The search stops once every neighbour
    /// of `local` is placed, so in a full mesh it reads one adjacency list.
    func broadcastChildren(of local: PeerName, from source: PeerName) -> [PeerName] {
        guard let l = slots[local], let s = slots[source] else { return [] }
        let mine = adjacency[Int(l)]
        if l == s { return mine.map { names[Int($0)] } }
        let (parent, _) = bfs(from: s, stopWhenReached: mine + [l])
        guard parent[Int(l)] >= 0 else { return [] }
        return mine.filter { parent[Int($0)] == l }.map { names[Int($0)] }
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
        var unicast: [PeerName: PeerName] = [:]
        if let root = graph.slots[local] {
            let (parent, order) = graph.bfs(from: root)
            unicast.reserveCapacity(order.count)
            // `order` is breadth-first, so a peer's parent already has its next hop.
            var hop = [Int32](repeating: -1, count: graph.names.count)
            for node in order.dropFirst() {
                let p = parent[Int(node)]
                hop[Int(node)] = p == root ? node : hop[Int(p)]
                unicast[graph.names[Int(node)]] = graph.names[Int(hop[Int(node)])]
            }
        }
        self.unicast = unicast
    }

    /// The neighbour to send a packet for `destination` to; nil when unreachable or `local`.
    public func nextHop(to destination: PeerName) -> PeerName? { unicast[destination] }

    /// The peers this router forwards a broadcast originated by `source` to: its children in the
    /// breadth-first tree rooted at `source`, in ascending name order. Empty when `source` is
    /// not in the graph or this router is not in its tree. Computed on demand, O(V + E).
    public func broadcastNextHops(from source: PeerName) -> [PeerName] {
        graph.broadcastChildren(of: local, from: source)
    }

    /// Every peer reachable from this router over mutual established connections, including
    /// this router itself.
    public var reachable: Set<PeerName> { Set(unicast.keys).union([local]) }
}
