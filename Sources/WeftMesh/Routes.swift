import WeftWire

// Unicast and broadcast routes over the topology graph (docs/protocol.md §4.1).

/// Binary search in an ascending array: the graph's short lists and the few names a settled
/// mesh wants to dial, where it is cheaper than hashing.
func sortedContains<T: Comparable>(_ sorted: [T], _ value: T) -> Bool {
    var lo = 0, hi = sorted.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if sorted[mid] < value { lo = mid + 1 } else { hi = mid }
    }
    return lo < sorted.count && sorted[lo] == value
}

/// The undirected graph of mutual established connections (docs/protocol.md §4.1), kept up to
/// date one entry at a time: an edge A–B exists when A lists B *and* B lists A as established.
/// Self-loops, peers without an entry and repeated connections make no edge. Peers are slots
/// (small integers) so that a breadth-first search over a thousand routers touches arrays, not
/// hash tables; each adjacency list is in ascending name order, so every router's searches agree.
struct MeshGraph: Sendable, Equatable {
    private(set) var slots: [PeerName: Int32] = [:]
    private(set) var names: [PeerName] = []
    /// What each slot's entry lists as established (slots, ascending by slot number, no repeats):
    /// sorted arrays, so an update is a merge of two short lists, not set algebra.
    private var listed: [[Int32]] = []
    /// Mutual neighbours of each slot, ascending by name.
    private(set) var adjacency: [[Int32]] = []
    /// The list being built by `update`, kept so that updates allocate nothing once warm.
    private var scratch: [Int32] = []
    private var nameScratch: ([PeerName], [PeerName]) = ([], [])
    private var goneScratch: [Int32] = []
    /// The graph of the data plane: a connection whose lister reports its data plane down
    /// (`ConnectionEntry.dataPlaneDown`) makes no edge, so one side's report removes the edge.
    private(set) var dataPlaneOnly = false

    init(dataPlaneOnly: Bool = false) { self.dataPlaneOnly = dataPlaneOnly }

    static func == (a: MeshGraph, b: MeshGraph) -> Bool {
        a.dataPlaneOnly == b.dataPlaneOnly && a.slots == b.slots && a.names == b.names && a.listed == b.listed && a.adjacency == b.adjacency
    }

    /// The graph of `peers` at once.
    init(peers: [PeerName: PeerEntry], dataPlaneOnly: Bool = false) {
        self.dataPlaneOnly = dataPlaneOnly
        for (name, entry) in peers { update(name, entry) }
    }

    /// Sets what `name` lists; nil when its entry is gone. Returns whether an edge came or went.
    /// With `was`, the entry this graph last took for `name`, only the remotes that differ are
    /// looked up: most new versions add or drop one link of many, or change none.
    @discardableResult
    mutating func update(_ name: PeerName, _ entry: PeerEntry?, was: PeerEntry?? = nil) -> Bool {
        var now = scratch
        now.removeAll(keepingCapacity: true)
        scratch = []
        let s: Int32
        if let was, let known = slots[name] {
            s = known
            var (before, after) = nameScratch
            nameScratch = ([], [])
            offered(name, was, into: &before)
            offered(name, entry, into: &after)
            defer { nameScratch = (before, after) }
            guard before != after else {
                scratch = now
                return false
            }
            // listed[s] holds exactly the slots of `before`: drop the names that went, add those that came.
            var i = 0, j = 0
            var gone = goneScratch
            goneScratch = []
            gone.removeAll(keepingCapacity: true)
            defer { goneScratch = gone }
            while i < before.count || j < after.count {
                if j == after.count || (i < before.count && before[i] < after[j]) {
                    if let g = slots[before[i]] { gone.append(g) }
                    i += 1
                } else if i == before.count || after[j] < before[i] {
                    now.append(slot(for: after[j]))
                    j += 1
                } else {
                    i += 1
                    j += 1
                }
            }
            for l in listed[Int(s)] where !gone.contains(l) { now.append(l) }
            now.sort()
        } else {
            s = slot(for: name)
            if let entry {
                for c in entry.connections where offers(name, c) { now.append(slot(for: c.remote)) }
                now.sort()
                if now.count > 1 {
                    var kept = 1
                    for i in 1..<now.count where now[i] != now[kept - 1] {
                        now[kept] = now[i]
                        kept += 1
                    }
                    now.removeLast(now.count - kept)
                }
            }
        }
        guard now != listed[Int(s)] else {
            scratch = now
            return false
        }
        let before = listed[Int(s)]
        listed[Int(s)] = now
        // Walk both sorted lists: a remote that appears or disappears turns the edge on or off
        // when the remote lists us.
        var i = 0, j = 0
        var edgesChanged = false
        while i < before.count || j < now.count {
            if j == now.count || (i < before.count && before[i] < now[j]) {
                if setEdge(s, before[i], false) { edgesChanged = true }
                i += 1
            } else if i == before.count || now[j] < before[i] {
                if sortedContains(listed[Int(now[j])], s), setEdge(s, now[j], true) { edgesChanged = true }
                j += 1
            } else {
                i += 1
                j += 1
            }
        }
        scratch = before
        return edgesChanged
    }

    /// Whether connection `c` of `name`'s entry offers an edge (the other end must list it too).
    private func offers(_ name: PeerName, _ c: ConnectionEntry) -> Bool {
        c.established && c.remote != name && !(dataPlaneOnly && c.dataPlaneDown)
    }

    /// The remotes `entry` offers edges to, ascending, without repeats.
    private func offered(_ name: PeerName, _ entry: PeerEntry?, into out: inout [PeerName]) {
        out.removeAll(keepingCapacity: true)
        for c in entry?.connections ?? [] where offers(name, c) { out.append(c.remote) }
        if !out.indices.dropFirst().allSatisfy({ out[$0 - 1] < out[$0] }) {
            out.sort()
            var kept = 0
            for k in out.indices where k == 0 || out[k] != out[kept - 1] {
                out[kept] = out[k]
                kept += 1
            }
            out.removeLast(out.count - kept)
        }
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

    /// Returns whether the edge changed.
    private mutating func setEdge(_ a: Int32, _ b: Int32, _ on: Bool) -> Bool {
        // Two calls rather than a loop over the pairs: an array literal here was an allocation per edge.
        let one = setHalfEdge(a, b, on)
        let other = setHalfEdge(b, a, on)
        return one || other
    }

    private mutating func setHalfEdge(_ x: Int32, _ y: Int32, _ on: Bool) -> Bool {
        let i = insertionPoint(of: y, in: adjacency[Int(x)])
        let present = i < adjacency[Int(x)].count && adjacency[Int(x)][i] == y
        if on && !present { adjacency[Int(x)].insert(y, at: i); return true }
        if !on && present { adjacency[Int(x)].remove(at: i); return true }
        return false
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
    /// parent (-1 for the root and the unreached) and the order slots were reached in. O(V + E).
    func bfs(from root: Int32) -> (parent: [Int32], order: [Int32]) {
        let n = names.count
        var parent = [Int32](repeating: -1, count: n)
        var order = [Int32](repeating: 0, count: n)
        var count = 1
        parent.withUnsafeMutableBufferPointer { parent in
            order.withUnsafeMutableBufferPointer { order in
                adjacency.withUnsafeBufferPointer { adjacency in
                    parent[Int(root)] = root  // visited; cleared below
                    order[0] = root
                    var head = 0
                    while head < count {
                        let node = order[head]
                        head += 1
                        adjacency[Int(node)].withUnsafeBufferPointer { neighbours in
                            for next in neighbours where parent[Int(next)] < 0 {
                                parent[Int(next)] = node
                                order[count] = next
                                count += 1
                            }
                        }
                    }
                    parent[Int(root)] = -1
                }
            }
        }
        order.removeLast(n - count)
        return (parent, order)
    }

    /// Breadth-first search by name (for tests and PathMTU): parents and order as names.
    func bfs(from root: PeerName) -> (parent: [PeerName: PeerName], order: [PeerName]) {
        guard let s = slots[root] else { return ([:], []) }
        let (parent, order) = bfs(from: s)
        var byName: [PeerName: PeerName] = [:]
        for n in order.dropFirst() { byName[names[Int(n)]] = names[Int(parent[Int(n)])] }
        return (byName, order.map { names[Int($0)] })
    }

    /// The first hop of `root`'s route to every slot (-1 when unreached; `root` for itself):
    /// the first hop of the breadth-first path, which is the smallest-named neighbour of `root`
    /// on any shortest path (the search visits neighbours in name order). O(V + E).
    func firstHops(from root: Int32) -> [Int32] {
        let n = names.count
        var hop = [Int32](repeating: -1, count: n)
        var queue = [Int32](repeating: 0, count: n)
        hop.withUnsafeMutableBufferPointer { hop in
            queue.withUnsafeMutableBufferPointer { queue in
                adjacency.withUnsafeBufferPointer { adjacency in
                    hop[Int(root)] = root
                    queue[0] = root
                    var head = 0, count = 1
                    while head < count {
                        let node = queue[head]
                        head += 1
                        adjacency[Int(node)].withUnsafeBufferPointer { neighbours in
                            for next in neighbours where hop[Int(next)] < 0 {
                                hop[Int(next)] = node == root ? next : hop[Int(node)]
                                queue[count] = next
                                count += 1
                            }
                        }
                    }
                }
            }
        }
        return hop
    }

    /// Hop counts from `root` (-1 when not reached), searching only as far as `local`'s
    /// distance plus one: enough to judge `local`'s children in `root`'s broadcast tree.
    private func distances(from root: Int32, through local: Int32) -> [Int32] {
        let n = names.count
        var dist = [Int32](repeating: -1, count: n)
        var queue = [Int32](repeating: 0, count: n)
        dist.withUnsafeMutableBufferPointer { dist in
            queue.withUnsafeMutableBufferPointer { queue in
                adjacency.withUnsafeBufferPointer { adjacency in
                    dist[Int(root)] = 0
                    queue[0] = root
                    var head = 0, count = 1
                    while head < count {
                        let node = queue[head]
                        head += 1
                        let d = dist[Int(node)]
                        // Every slot up to local's distance + 1 is placed once local's level is expanded.
                        if dist[Int(local)] >= 0, d > dist[Int(local)] { break }
                        adjacency[Int(node)].withUnsafeBufferPointer { neighbours in
                            for next in neighbours where dist[Int(next)] < 0 {
                                dist[Int(next)] = d + 1
                                queue[count] = next
                                count += 1
                            }
                        }
                    }
                }
            }
        }
        return dist
    }

    /// `local`'s children in the broadcast tree of each of `sources` (docs/protocol.md §4.1),
    /// ascending by name: the neighbours whose own first hop toward the source is `local`, so a
    /// broadcast travels the reverse of the unicast routes toward its source. A few sources are
    /// judged by a search from each (as far as local's neighbours), more from the table of every
    /// source (`broadcastTable`, about three searches' work). Both give the same answer: a
    /// neighbour c's first hop toward S is the smallest-named neighbour of c one hop closer to S
    /// (`firstHops`).
    func broadcastChildren(of local: Int32, sources: [Int32]) -> [[Int32]] {
        let mine = adjacency[Int(local)]
        guard !mine.isEmpty, !sources.isEmpty else { return sources.map { _ in [] } }
        if sources.count <= BroadcastTable.cheaperFrom {
            return sources.map { source in
                if source == local { return mine }
                let dist = distances(from: source, through: local)
                let l = dist[Int(local)]
                guard l >= 0 else { return [] }
                var children: [Int32] = []
                for c in mine where dist[Int(c)] == l + 1 {
                    // c's first hop toward the source: its smallest-named neighbour one hop closer.
                    for y in adjacency[Int(c)] where dist[Int(y)] == l {
                        if y == local { children.append(c) }
                        break
                    }
                }
                return children
            }
        }
        let table = broadcastTable(of: local)
        return sources.map(table.children(in:))
    }

    /// `local`'s children in the broadcast tree of every slot at once. It runs the searches
    /// from all of local's neighbours side by side, one bit per neighbour, level by level: a
    /// slot's first hop from neighbour c is the smallest first hop among its parents one level
    /// nearer c (the search visits neighbours in name order), so two bits per neighbour carry
    /// what is needed, "first hop is local" and "first hop is named below local". The
    /// neighbours' distances to any slot differ by at most 2, so each slot is expanded at most
    /// three times: O(3·E) word operations instead of one O(V + E) search per neighbour.
    func broadcastTable(of local: Int32) -> BroadcastTable {
        let mine = adjacency[Int(local)]
        if mine.count <= 64 { return broadcastTableOneWord(of: local) }
        let n = names.count
        let words = max(1, (mine.count + 63) / 64)
        let localName = names[Int(local)]
        // Seven bit sets of `words` words per slot in one allocation: reached; first hop is
        // local; first hop named below local; reached at the last level (passed on); and what
        // the level being gathered brings: reached, through a parent whose first hop is local,
        // through one whose first hop is below local.
        let size = n * words
        var bits = [UInt64](repeating: 0, count: 7 * size)
        var queued = [Bool](repeating: false, count: n)
        var frontier: [Int32] = []
        var next: [Int32] = []
        bits.withUnsafeMutableBufferPointer { bits in
        queued.withUnsafeMutableBufferPointer { queued in
        adjacency.withUnsafeBufferPointer { adjacency in
            let base = bits.baseAddress!
            let reached = base, isLocal = base + size, below = base + 2 * size, pass = base + 3 * size
            let add = base + 4 * size, addLocal = base + 5 * size, addBelow = base + 6 * size
            // Level 0 is each neighbour itself; at level 1 each of its neighbours is its own first hop.
            for (i, c) in mine.enumerated() {
                reached[Int(c) * words + i / 64] |= UInt64(1) << UInt64(i % 64)
            }
            for (i, c) in mine.enumerated() {
                let w = i / 64, bit = UInt64(1) << UInt64(i % 64)
                for y in adjacency[Int(c)] {
                    let k = Int(y) * words + w
                    guard reached[k] & bit == 0 else { continue }
                    if !queued[Int(y)] {
                        queued[Int(y)] = true
                        next.append(y)
                    }
                    add[k] |= bit
                    if y == local { addLocal[k] |= bit } else if names[Int(y)] < localName { addBelow[k] |= bit }
                }
            }
            while !next.isEmpty {
                // Settle the level gathered (bits not reached before it, by construction).
                frontier.removeAll(keepingCapacity: true)
                for u in next {
                    queued[Int(u)] = false
                    var any: UInt64 = 0
                    for w in 0..<words {
                        let k = Int(u) * words + w
                        let new = add[k]
                        reached[k] |= new
                        below[k] |= addBelow[k] & new
                        isLocal[k] |= addLocal[k] & ~addBelow[k] & new
                        pass[k] = new
                        add[k] = 0
                        addLocal[k] = 0
                        addBelow[k] = 0
                        any |= new
                    }
                    if any != 0 { frontier.append(u) }
                }
                next.removeAll(keepingCapacity: true)
                // Gather the next level: each slot passes its new bits to neighbours not yet reached.
                for v in frontier {
                    for u in adjacency[Int(v)] {
                        for w in 0..<words {
                            let kv = Int(v) * words + w, ku = Int(u) * words + w
                            let fresh = pass[kv] & ~reached[ku]
                            guard fresh != 0 else { continue }
                            if !queued[Int(u)] {
                                queued[Int(u)] = true
                                next.append(u)
                            }
                            add[ku] |= fresh
                            addLocal[ku] |= isLocal[kv] & fresh
                            addBelow[ku] |= below[kv] & fresh
                        }
                    }
                }
                for v in frontier {
                    for w in 0..<words { pass[Int(v) * words + w] = 0 }
                }
            }
        }}}
        return BroadcastTable(neighbours: mine, words: words, children: Array(bits[size..<(2 * size)]))
    }
}

extension MeshGraph {
    /// `broadcastTable(of:)` for a router with at most 64 neighbours, nearly every one: the
    /// same steps with one word per slot and set, so the inner loops carry no word index and
    /// read each slot's bits once (it was a fifth of the 1000-router simulation's time).
    /// RoutesTests compares both with the search from each source.
    fileprivate func broadcastTableOneWord(of local: Int32) -> BroadcastTable {
        let mine = adjacency[Int(local)]
        let n = names.count
        let localName = names[Int(local)]
        var bits = [UInt64](repeating: 0, count: 7 * n)
        var queued = [Bool](repeating: false, count: n)
        var frontier: [Int32] = []
        var next: [Int32] = []
        bits.withUnsafeMutableBufferPointer { bits in
        queued.withUnsafeMutableBufferPointer { queued in
        adjacency.withUnsafeBufferPointer { adjacency in
            let base = bits.baseAddress!
            let reached = base, isLocal = base + n, below = base + 2 * n, pass = base + 3 * n
            let add = base + 4 * n, addLocal = base + 5 * n, addBelow = base + 6 * n
            for (i, c) in mine.enumerated() { reached[Int(c)] |= UInt64(1) << UInt64(i) }
            for (i, c) in mine.enumerated() {
                let bit = UInt64(1) << UInt64(i)
                for y in adjacency[Int(c)] {
                    let k = Int(y)
                    guard reached[k] & bit == 0 else { continue }
                    if !queued[k] {
                        queued[k] = true
                        next.append(y)
                    }
                    add[k] |= bit
                    if y == local { addLocal[k] |= bit } else if names[k] < localName { addBelow[k] |= bit }
                }
            }
            while !next.isEmpty {
                frontier.removeAll(keepingCapacity: true)
                for u in next {
                    let k = Int(u)
                    queued[k] = false
                    let new = add[k]
                    reached[k] |= new
                    below[k] |= addBelow[k] & new
                    isLocal[k] |= addLocal[k] & ~addBelow[k] & new
                    pass[k] = new
                    add[k] = 0
                    addLocal[k] = 0
                    addBelow[k] = 0
                    if new != 0 { frontier.append(u) }
                }
                next.removeAll(keepingCapacity: true)
                for v in frontier {
                    let kv = Int(v)
                    let passing = pass[kv], viaLocal = isLocal[kv], viaBelow = below[kv]
                    adjacency[kv].withUnsafeBufferPointer { neighbours in
                        for u in neighbours {
                            let ku = Int(u)
                            let fresh = passing & ~reached[ku]
                            guard fresh != 0 else { continue }
                            if !queued[ku] {
                                queued[ku] = true
                                next.append(u)
                            }
                            add[ku] |= fresh
                            addLocal[ku] |= viaLocal & fresh
                            addBelow[ku] |= viaBelow & fresh
                        }
                    }
                }
                for v in frontier { pass[Int(v)] = 0 }
            }
        }}}
        return BroadcastTable(neighbours: mine, words: 1, children: Array(bits[n..<(2 * n)]))
    }
}

/// `local`'s children in the broadcast tree of every slot of a graph (`MeshGraph.broadcastTable`):
/// valid while the graph's edges stay as they were (slots added since have no tree).
struct BroadcastTable: Sendable {
    /// Up to this many sources, a search from each is cheaper than the table.
    static let cheaperFrom = 2
    /// local's neighbours, ascending by name: bit i stands for neighbours[i].
    let neighbours: [Int32]
    let words: Int
    /// Per slot, `words` words: bit i set when neighbours[i] is a child in that slot's tree.
    let children: [UInt64]

    func children(in source: Int32) -> [Int32] {
        let base = Int(source) * words
        guard base + words <= children.count else { return [] }
        var result: [Int32] = []
        for w in 0..<words {
            var bits = children[base + w]
            while bits != 0 {
                let i = bits.trailingZeroBitCount
                result.append(neighbours[w * 64 + i])
                bits &= bits - 1
            }
        }
        return result
    }
}

/// Where this router sends packets: computed by `Topology.routes()`. Computing it is one
/// breadth-first search; the name-keyed `unicast` map is built only when read.
public struct Routes: Sendable, Equatable {
    /// The router these routes belong to.
    public let local: PeerName
    let graph: MeshGraph
    /// First hop of the route to each slot of `graph` (MeshGraph.firstHops); empty when `local`
    /// is not in the graph.
    let hops: [Int32]
    /// How many peers are reachable, `local` included: every one with an entry when it equals
    /// the topology's count (a slot without an entry lists nothing, so has no link).
    public let reachableCount: Int

    /// `hops` may come from routes computed before over the same links (Topology.linkGeneration).
    init(local: PeerName, graph: MeshGraph, hops: [Int32]? = nil) {
        self.local = local
        self.graph = graph
        self.hops = hops ?? graph.slots[local].map { graph.firstHops(from: $0) } ?? []
        reachableCount = self.hops.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
    }

    /// Destination → next hop, for every peer reachable from `local` (never `local` itself).
    /// Built on each read: O(V).
    public var unicast: [PeerName: PeerName] {
        var unicast: [PeerName: PeerName] = [:]
        guard let root = graph.slots[local] else { return unicast }
        for (node, h) in hops.enumerated() where h >= 0 && node != Int(root) {
            unicast[graph.names[node]] = graph.names[Int(h)]
        }
        return unicast
    }

    /// The neighbour to send a packet for `destination` to; nil when unreachable or `local`.
    public func nextHop(to destination: PeerName) -> PeerName? {
        guard destination != local, let s = graph.slots[destination], Int(s) < hops.count, hops[Int(s)] >= 0 else { return nil }
        return graph.names[Int(hops[Int(s)])]
    }

    /// Whether `name` is this router or reachable from it over mutual established connections.
    public func isReachable(_ name: PeerName) -> Bool { name == local || nextHop(to: name) != nil }

    /// The peers this router forwards a broadcast originated by `source` to: its children in
    /// `source`'s broadcast tree (§4.1), in ascending name order. Empty when `source` is not in
    /// the graph or this router is not in its tree.
    public func broadcastNextHops(from source: PeerName) -> [PeerName] {
        broadcastNextHops(from: [source])[source] ?? []
    }

    /// `broadcastNextHops(from:)` of many sources at once; a source with no children has none
    /// in the result. About three searches' work however many sources (`MeshGraph.broadcastTable`).
    public func broadcastNextHops(from sources: [PeerName]) -> [PeerName: [PeerName]] {
        Self.broadcastNextHops(graph: graph, local: local, from: sources)
    }

    /// With `table` (local's, over the same links as `graph`), no search at all.
    static func broadcastNextHops(graph: MeshGraph, local: PeerName, from sources: [PeerName], table: BroadcastTable? = nil) -> [PeerName: [PeerName]] {
        guard let l = graph.slots[local] else { return [:] }
        let known = sources.filter { graph.slots[$0] != nil }
        let slots = known.map { graph.slots[$0]! }
        let children = table.map { slots.map($0.children(in:)) } ?? graph.broadcastChildren(of: l, sources: slots)
        var result: [PeerName: [PeerName]] = [:]
        for (source, list) in zip(known, children) where !list.isEmpty {
            result[source] = list.map { graph.names[Int($0)] }
        }
        return result
    }

    /// Every peer reachable from this router over mutual established connections, including
    /// this router itself.
    public var reachable: Set<PeerName> {
        var result: Set<PeerName> = [local]
        for (node, h) in hops.enumerated() where h >= 0 { result.insert(graph.names[node]) }
        return result
    }
}
