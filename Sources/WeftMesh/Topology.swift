import WeftWire

// What this router knows of the mesh: one entry per peer, merged from gossip (docs/protocol.md §4).
// Pure: no clocks, no sockets, no randomness.

public struct Topology: Sendable {
    public let ownName: PeerName
    /// Every known peer's newest entry, including this router's own.
    public private(set) var peers: [PeerName: PeerEntry]
    /// The links of `peers`, kept in step entry by entry (every write goes through `store`).
    private(set) var graph = MeshGraph()
    /// The links that carry forwarded traffic (`MeshGraph.dataPlaneOnly`): kept only while some
    /// entry reports a data plane down, since otherwise it equals `graph`.
    private(set) var dataPlaneGraph: MeshGraph?
    /// The peers whose entries report a data plane down (what keeps `dataPlaneGraph`).
    private var dataPlaneDownListers: Set<PeerName> = []
    /// Changes whenever `dataPlaneGraph` comes, goes or changes its links.
    public private(set) var dataPlaneGeneration: UInt64 = 0

    /// Starts a topology holding only `own`. Its nickname and addresses are cut to the wire limits.
    public init(own: PeerEntry) {
        var own = own
        own.nickname = Self.wireNickname(own.nickname)
        own.connections = Self.wireConnections(own.connections)
        ownName = own.name
        peers = [:]
        store(own.name, own)
    }

    /// Changes whenever an entry comes or goes or lists other connections: dial candidates
    /// (`dialCandidates`) can only change with it.
    public private(set) var listingGeneration: UInt64 = 0
    /// Changes whenever a link of the graph comes or goes (or the graph is renumbered): routes
    /// and broadcast trees computed before stay right while it is the same.
    public private(set) var linkGeneration: UInt64 = 0
    /// The version of every entry, ascending by name: what digests are made of, kept sorted so
    /// that they need no sort.
    public private(set) var versions: [PeerVersion] = []
    /// Every address an entry lists for another peer, by that peer, best first (the order of
    /// `dialCandidates`), kept up to date entry by entry so that finding candidates reads no
    /// entry's connections.
    private var listings: [PeerName: [Listing]] = [:]

    /// Where the address is, not the address itself: a thousand-router mesh lists ten thousand,
    /// and each router holds all of them. `rank` counts the lister's earlier connections to the
    /// same remote (0 for the first), not its place in the whole list: a link added to or lost
    /// from an entry then leaves the listings of its other links as they were.
    fileprivate struct Listing: Sendable, Equatable {
        // In this order the three pack into 16 bytes.
        var lister: PeerName
        var rank: Int32
        var established: Bool

        /// Established connections first, then by the listing peer's name, then its list order.
        func isBetter(than other: Listing) -> Bool {
            established != other.established ? established
                : lister != other.lister ? lister < other.lister : rank < other.rank
        }
    }

    /// One listed address of an entry, as `relist` compares them: by remote, then rank.
    private struct Listed: Comparable {
        var remote: PeerName
        var rank: Int32
        var established: Bool

        static func < (a: Listed, b: Listed) -> Bool { a.remote != b.remote ? a.remote < b.remote : a.rank < b.rank }
    }

    /// Reused by `relist`, so that a merge allocates nothing for it once warm.
    private var relistScratch: ([Listed], [Listed]) = ([], [])

    private mutating func store(_ name: PeerName, _ entry: PeerEntry?) {
        // One hash lookup swaps the entry in and hands back the one it replaces.
        let known = entry.map { peers.updateValue($0, forKey: name) } ?? peers.removeValue(forKey: name)
        // Most new versions change the connections, but a nickname or short id alone leaves the
        // graph and the listings as they are.
        let relinked = (known == nil) != (entry == nil) || known?.connections != entry?.connections
        storeVersion(name, entry.map(PeerVersion.init))
        guard relinked else { return }
        listingGeneration &+= 1
        relist(name, was: known, now: entry)
        if graph.update(name, entry, was: known) { linkGeneration &+= 1 }
        // Slots of removed peers stay (others may still list them); compact when they pile up.
        if entry == nil, graph.names.count > 2 * peers.count + 64 {
            graph = MeshGraph(peers: peers)
            linkGeneration &+= 1
        }
        storeDataPlane(name, entry, was: known)
    }

    private mutating func storeDataPlane(_ name: PeerName, _ entry: PeerEntry?, was: PeerEntry?) {
        let reportsDown = entry?.connections.contains { $0.established && $0.dataPlaneDown } ?? false
        if reportsDown { dataPlaneDownListers.insert(name) } else if !dataPlaneDownListers.isEmpty { dataPlaneDownListers.remove(name) }
        if dataPlaneDownListers.isEmpty {
            if dataPlaneGraph != nil { dataPlaneGraph = nil; dataPlaneGeneration &+= 1 }
        } else if dataPlaneGraph == nil {
            dataPlaneGraph = MeshGraph(peers: peers, dataPlaneOnly: true)
            dataPlaneGeneration &+= 1
        } else if dataPlaneGraph!.update(name, entry, was: was) {
            dataPlaneGeneration &+= 1
        }
    }

    /// Brings `listings` from what `was` listed to what `now` lists, touching only the
    /// listings that differ: most new versions add or drop one link of many.
    private mutating func relist(_ lister: PeerName, was: PeerEntry?, now: PeerEntry?) {
        var (before, after) = relistScratch
        relistScratch = ([], [])
        Self.listed(by: lister, was?.connections ?? [], into: &before)
        Self.listed(by: lister, now?.connections ?? [], into: &after)
        var i = 0, j = 0
        while i < before.count || j < after.count {
            if j == after.count || (i < before.count && before[i] < after[j]) {
                unlist(before[i], lister)
                i += 1
            } else if i == before.count || after[j] < before[i] {
                listings[after[j].remote, default: []].insertInOrder(Listing(lister: lister, rank: after[j].rank, established: after[j].established))
                j += 1
            } else {
                if before[i].established != after[j].established {
                    unlist(before[i], lister)
                    listings[after[j].remote, default: []].insertInOrder(Listing(lister: lister, rank: after[j].rank, established: after[j].established))
                }
                i += 1
                j += 1
            }
        }
        relistScratch = (before, after)
    }

    private mutating func unlist(_ l: Listed, _ lister: PeerName) {
        let listing = Listing(lister: lister, rank: l.rank, established: l.established)
        guard var list = listings.removeValue(forKey: l.remote) else { return }
        list.removeAll { $0 == listing }
        if !list.isEmpty { listings[l.remote] = list }
    }

    /// The addresses `connections` list for other peers, ascending by remote and rank.
    private static func listed(by lister: PeerName, _ connections: [ConnectionEntry], into out: inout [Listed]) {
        out.removeAll(keepingCapacity: true)
        for c in connections where c.remote != lister && !c.address.isEmpty {
            out.append(Listed(remote: c.remote, rank: 0, established: c.established))
        }
        // Router and the simulator list connections by remote already: then this sort only checks.
        if !out.isSorted(by: { $0.remote <= $1.remote }) {
            // A stable sort keeps the list order among one remote's connections, which `rank` counts.
            out = out.enumerated().sorted { $0.element.remote != $1.element.remote ? $0.element.remote < $1.element.remote : $0.offset < $1.offset }.map(\.element)
        }
        for k in out.indices.dropFirst() where out[k].remote == out[k - 1].remote { out[k].rank = out[k - 1].rank + 1 }
    }

    private mutating func storeVersion(_ name: PeerName, _ version: PeerVersion?) {
        var lo = 0, hi = versions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if versions[mid].name < name { lo = mid + 1 } else { hi = mid }
        }
        let present = lo < versions.count && versions[lo].name == name
        switch (version, present) {
        case (let v?, true): versions[lo] = v
        case (let v?, false): versions.insert(v, at: lo)
        case (nil, true): versions.remove(at: lo)
        case (nil, false): break
        }
    }

    /// This router's own entry.
    public var own: PeerEntry { peers[ownName]! }

    /// Replaces own nickname and connections; bumps own version only if something changed;
    /// returns whether it changed. The values are first cut to what the wire carries (nickname
    /// 64 bytes, 4096 connections, addresses 255 bytes) so that every router sees the same entry.
    public mutating func setOwn(nickname: String, connections: [ConnectionEntry]) -> Bool {
        var entry = own
        entry.nickname = Self.wireNickname(nickname)
        entry.connections = Self.wireConnections(connections)
        guard entry != own else { return false }
        entry.version &+= 1
        store(ownName, entry)
        return true
    }

    /// The merge rule of protocol.md §4: an entry replaces the known one when its
    /// `(version, uid)` is greater. An entry about this router is never taken; if it has another
    /// uid and a version at least our own (an earlier incarnation), our version goes above it.
    /// Afterwards, if a peer with a smaller name claims our short id, we move to a free one
    /// (§1, `resolveShortIdCollision`); only our own short id is ever changed, the owner of each entry fixes its own.
    /// Returns the entries that changed here, in ascending name order, to be gossiped on;
    /// empty when nothing changed.
    public mutating func merge(_ update: TopologyUpdate) -> [PeerEntry] {
        // The changed entries as stored, by name (an update may name a peer twice: the later
        // news wins); an array, not a set: merging is most of a busy router's work.
        var changed: [PeerEntry] = []
        for entry in update.peers where isNews(entry) {
            var stored = entry
            if entry.name == ownName {
                stored = own
                stored.version = entry.version &+ 1
            }
            store(entry.name, stored)
            changed.append(stored)
        }
        // Only a changed entry that claims our short id can start a collision: the full check
        // reads every entry, so it runs only then.
        let myId = own.shortId
        if changed.contains(where: { $0.name != ownName && $0.shortId == myId && $0.name < ownName }),
           resolveShortIdCollision() { changed.append(own) }
        guard changed.count > 1 else { return changed }
        // Keep the last of each name (the one stored), in ascending name order.
        var latest: [PeerEntry] = []
        let ordered = changed.enumerated().sorted { $0.element.name != $1.element.name ? $0.element.name < $1.element.name : $0.offset < $1.offset }
        for (_, e) in ordered {
            if let last = latest.last, last.name == e.name { latest[latest.count - 1] = e } else { latest.append(e) }
        }
        return latest
    }

    /// Whether merging `entry` changes anything: the rule `merge` applies to each entry.
    public func isNews(_ entry: PeerEntry) -> Bool {
        if entry.name == ownName { return entry.uid != own.uid && entry.version >= own.version }
        guard let known = peers[entry.name] else { return true }
        return (entry.version, entry.uid) > (known.version, known.uid)
    }

    /// Moves our short id when a peer with a smaller name claims ours: to the first id no other
    /// peer claims, counting up (and round) from `movedShortIdStart`. Returns whether our entry
    /// changed.
    private mutating func resolveShortIdCollision() -> Bool {
        var mine = own
        var taken = Set<UInt16>()
        var collides = false
        for (name, entry) in peers where name != ownName {
            taken.insert(entry.shortId)
            if entry.shortId == mine.shortId && name < ownName { collides = true }
        }
        let start = Self.movedShortIdStart(for: ownName, version: mine.version &+ 1)
        guard collides,
              let free = (0...TopologyUpdate.maxShortId).lazy.map({ (start &+ $0) & TopologyUpdate.maxShortId }).first(where: { !taken.contains($0) })
        else { return false }
        mine.shortId = free
        mine.version &+= 1
        store(ownName, mine)
        return true
    }

    /// Drops the peers not reachable from this router over mutual established connections
    /// (§4.1), except those in `keeping`; returns their names in ascending order. A router keeps
    /// a newly unreachable peer for a grace period, since gossip that makes it reachable again
    /// may be a message behind.
    public mutating func removeUnreachable(keeping: Set<PeerName> = []) -> [PeerName] {
        let reachable = routes().reachable
        let gone = peers.keys.filter { !reachable.contains($0) && $0 != ownName && !keeping.contains($0) }.sorted()
        for name in gone { store(name, nil) }
        return gone
    }

    /// Drops one peer's entry (never this router's own).
    public mutating func forget(_ name: PeerName) {
        guard name != ownName else { return }
        store(name, nil)
    }

    /// The whole topology, in ascending name order.
    public func fullUpdate() -> TopologyUpdate {
        TopologyUpdate(peers: peers.keys.sorted().map { peers[$0]! })
    }

    /// This router's children in the broadcast tree of each of `sources` (§4.1), over the
    /// current links: `Routes.broadcastNextHops(from:)` without computing the routes.
    public func broadcastNextHops(from sources: [PeerName]) -> [PeerName: [PeerName]] {
        Routes.broadcastNextHops(graph: graph, local: ownName, from: sources)
    }

    /// `broadcastNextHops(from:)` read off `table` (from `broadcastTable()` at the same
    /// `linkGeneration`): no search at all.
    func broadcastNextHops(from sources: [PeerName], table: BroadcastTable) -> [PeerName: [PeerName]] {
        Routes.broadcastNextHops(graph: graph, local: ownName, from: sources, table: table)
    }

    /// This router's children in every peer's broadcast tree over the current links: right
    /// while `linkGeneration` stays the same.
    func broadcastTable() -> BroadcastTable? {
        graph.slots[ownName].map(graph.broadcastTable(of:))
    }

    /// Unicast routes from this router and the graph for broadcast trees (§4.1).
    public func routes() -> Routes {
        Routes(local: ownName, graph: graph)
    }

    /// The routes forwarded traffic takes: `routes()` without the connections whose data plane
    /// does not answer heartbeats (docs/protocol.md §4.1). Nil while every data plane answers:
    /// then they are `routes()`.
    public func dataPlaneRoutes() -> Routes? {
        dataPlaneGraph.map { Routes(local: ownName, graph: $0) }
    }

    /// `routes()` with the search of routes computed at the same `linkGeneration` (`Routes.hops`).
    func routes(hops: [Int32]) -> Routes {
        Routes(local: ownName, graph: graph, hops: hops)
    }

    /// The peers in the topology that are neither in `connected` nor this router, in ascending
    /// name order, each with one address to dial: among the addresses other peers list for it
    /// (this router's own entry included), those of established connections first, then the
    /// others; within each group by the listing peer's name, then its list order. Peers nobody
    /// lists an address for are left out.
    public func dialCandidates(connected: Set<PeerName>) -> [(name: PeerName, address: String)] {
        var candidates: [(name: PeerName, address: String)] = []
        for v in versions where v.name != ownName && !connected.contains(v.name) {
            if let address = dialAddress(for: v.name) { candidates.append((v.name, address)) }
        }
        return candidates
    }

    /// The address `dialCandidates` gives for `name`, by itself: nil when nobody lists one (or
    /// `name` is this router). For a caller that can reach only a few of the peers (the
    /// simulation's underlay) and need not read every candidate.
    public func dialAddress(for name: PeerName) -> String? {
        guard name != ownName, peers[name] != nil, let best = listings[name]?.first, let lister = peers[best.lister] else { return nil }
        var rank = best.rank
        for c in lister.connections where c.remote == name && !c.address.isEmpty {
            if rank == 0 { return c.address }
            rank -= 1
        }
        return nil
    }

    /// The short id a router starts with (protocol.md §1): FNV-1a 64 of the 6 name bytes, low 12 bits.
    public static func initialShortId(for name: PeerName) -> UInt16 {
        UInt16(truncatingIfNeeded: fnv1a(name.bytes)) & TopologyUpdate.maxShortId
    }

    /// Where a router that must move its short id starts looking for a free one (protocol.md
    /// §1): FNV-1a 64 of the 6 name bytes and the 8 bytes of the version the move gives it
    /// (big-endian), low 12 bits. Not the lowest free id: routers that collide at the same time
    /// would all take it and collide again, one round per router.
    public static func movedShortIdStart(for name: PeerName, version: UInt64) -> UInt16 {
        let versionBytes = (0..<8).map { UInt8(truncatingIfNeeded: version >> UInt64(56 - 8 * $0)) }
        return UInt16(truncatingIfNeeded: fnv1a(name.bytes + versionBytes)) & TopologyUpdate.maxShortId
    }

    private static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }

    // MARK: - Wire limits

    /// The nickname exactly as the decoder will see it.
    static func wireNickname(_ text: String) -> String {
        guard text.utf8.count > TopologyUpdate.maxNicknameBytes else { return text }
        var w = ByteWriter()
        w.str8(text, maxLength: TopologyUpdate.maxNicknameBytes)
        var r = ByteReader(w.bytes)
        return (try? r.str8("nickname", maxLength: TopologyUpdate.maxNicknameBytes)) ?? ""
    }

    static func wireConnections(_ connections: [ConnectionEntry]) -> [ConnectionEntry] {
        connections.prefix(TopologyUpdate.maxConnections).map { c in
            guard c.address.utf8.count > TopologyUpdate.maxAddressBytes else { return c }
            var c = c
            var w = ByteWriter()
            w.str8(c.address, maxLength: TopologyUpdate.maxAddressBytes)
            var r = ByteReader(w.bytes)
            c.address = (try? r.str8("address")) ?? ""
            return c
        }
    }
}

private extension Array where Element == Topology.Listing {
    /// Inserts after every listing that is better (a few per peer: a linear walk).
    mutating func insertInOrder(_ listing: Element) {
        var i = endIndex
        while i > startIndex, listing.isBetter(than: self[i - 1]) { i -= 1 }
        insert(listing, at: i)
    }
}

private extension Array {
    func isSorted(by ordered: (Element, Element) -> Bool) -> Bool {
        indices.dropFirst().allSatisfy { ordered(self[$0 - 1], self[$0]) }
    }
}
