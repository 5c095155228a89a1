import WeftWire

// The topology gossip of one router (docs/protocol.md §4.2–4.4) as a pure state machine: events
// in (own connections changed, a link came up or went down, a message arrived, time passed),
// messages to send out. The router carries the sends out on its links; the simulation in
// Tests/GossipSimulationTests runs a thousand of these in memory.
//
// What keeps the cost proportional to the change:
// - a change travels once, along the broadcast tree of the peer it is about, never on a timer;
// - changes that arrive close together are forwarded together (the first at once, the rest
//   after `forwardInterval`, newest version only), so one set of tree searches and one message
//   per neighbour serve a burst;
// - own-entry changes are coalesced (while links keep changing, one update every 2 s);
// - a new link exchanges digests (versions only) and each side sends just what the other lacks;
// - anti-entropy is a 12-byte summary to one neighbour at a time; entries follow only on a
//   mismatch;
// - a removed peer's last version is remembered, and an entry no newer than it is taken back
//   only if it is reachable: stale gossip cannot resurrect a departed peer.

/// The timings of the gossip, in seconds (docs/protocol.md §4.4).
public struct GossipTimings: Sendable {
    /// Own-entry changes leave at most this often; a change after this long without one
    /// leaves at once, later ones when the entry has been unchanged this long.
    public var ownUpdateInterval: Double = 0.5
    /// While own changes keep coming (a router joining a mesh gains a link every few tenths of
    /// a second), the pending update leaves at the latest this long after the first change it
    /// holds: each update is the whole entry (~3 kB at 100 links) to every neighbour, and every
    /// neighbour merges it (docs/protocol.md §4.2).
    public var ownUpdateHold: Double = 2
    /// Forwarded changes leave at most this often: a change that finds the last forward older
    /// than this goes at once, later ones wait and go together (docs/protocol.md §4.2).
    public var forwardInterval: Double = 0.1
    /// A summary digest goes to one neighbour (in turn) this often.
    public var antiEntropyInterval: Double = 2
    /// And once the topology has been still this long after a change: a gap the change left
    /// (two neighbours each taking the other for its parent in a tree) is found then, not up to
    /// `antiEntropyInterval` later (docs/protocol.md §4.3).
    public var settledSummaryDelay: Double = 1
    /// An unreachable peer is kept this long before it is removed: gossip that makes it
    /// reachable again may be a message behind. Longer than the link idle timeout (20 s,
    /// LinkTimings.idleTimeout): a router cut off from a peer that left may claim its link to it
    /// until that timer fires, so by the time the peer is forgotten no live router still claims
    /// a link to it and stale entries cannot make it reachable again (docs/protocol.md §4.2).
    public var unreachableGrace: Double = 25
    /// How long a removed peer's last version is remembered.
    public var departureMemory: Double = 600

    public init() {}
}

/// One message for a neighbour.
public struct GossipSend: Sendable, Equatable {
    public var to: PeerName
    public var type: MessageType
    public var payload: [UInt8]
}

/// What the router must do after an event.
public struct GossipEffects: Sendable {
    /// Messages to send, in order.
    public var sends: [GossipSend] = []
    /// The topology or the routes changed: forwarding and dial targets need refreshing.
    public var topologyChanged = false
    /// Peers removed from the topology by this event, in ascending order.
    public var removed: [PeerName] = []

    public init() {}
}

public struct Gossip: Sendable {
    public private(set) var topology: Topology
    /// Routes are recomputed only when asked for after a change: O(V + E) each time, and a
    /// burst of gossip changes the topology many times between two uses. Dropped before the
    /// topology changes (`editTopology`): routes share the topology's graph, and a change while
    /// they are held would copy the whole graph.
    private var cachedRoutes: Routes?
    /// `dataPlaneRoutes()` while some data plane is down, with the generation it was made at.
    private var cachedDataPlaneRoutes: (generation: UInt64, routes: Routes)?
    /// The search behind the last routes and this router's broadcast table, with the
    /// `Topology.linkGeneration` they were made at: most changes leave the links as they were.
    private var cachedHops: (generation: UInt64, hops: [Int32])?
    private var cachedTable: (generation: UInt64, table: BroadcastTable)?
    /// `heldVersions()` and its summary, until the topology changes.
    private var cachedHeld: [PeerVersion]?
    private var cachedSummary: GossipDigest?
    /// When the topology first changed since unreachable peers were last looked for (nil: not
    /// since). A peer found unreachable is dated from that change rather than from the look:
    /// its grace may start up to a tick (0.5 s) early, never late (docs/protocol.md §4.2).
    private var reachabilityStaleSince: Double?
    public let timings: GossipTimings
    /// Peers with an established link, ascending.
    public private(set) var neighbours: [PeerName] = []
    /// Removed peers: the last version held and when the memory of it ends.
    private var departures: [PeerName: (version: PeerVersion, until: Double)] = [:]
    private var unreachableSince: [PeerName: Double] = [:]
    private var ownPending = false
    private var lastOwnSent = -Double.infinity
    /// When the own entry last changed, and when the oldest change not yet sent was made.
    private var lastOwnChange = -Double.infinity
    private var ownPendingSince = -Double.infinity
    /// The pending change came after a quiet spell: it leaves as soon as the spacing allows.
    private var ownPendingAtOnce = false
    /// Changes waiting to be forwarded: each peer's newest changed entry and the neighbours
    /// known to hold that version, which it is not sent to: the one it came from, and any that
    /// sent the same version while it waited (views that differ for a moment deliver a change
    /// twice; docs/protocol.md §4.2).
    private var forwardQueue: [PeerName: (from: PeerName, also: [PeerName])] = [:]
    private var lastForward = -Double.infinity
    private var nextAntiEntropy: Double = 0
    /// When a summary goes out because the topology has been still for `settledSummaryDelay`.
    private var settledSummaryAt: Double?
    private var rotation = 0

    /// GOSSIP payloads are cut at this size so one large update does not hold a link's other
    /// messages back for long.
    public static let payloadBudget = 64 * 1024

    public init(own: PeerEntry, timings: GossipTimings = GossipTimings()) {
        topology = Topology(own: own)
        self.timings = timings
        // Spread the summaries of routers started together over the interval.
        nextAntiEntropy = timings.antiEntropyInterval * Double(own.name.value % 1024) / 1024
    }

    /// The routes forwarded traffic takes (`Topology.dataPlaneRoutes`): `routes()` while
    /// every data plane answers.
    public mutating func dataPlaneRoutes() -> Routes {
        if let cachedDataPlaneRoutes, cachedDataPlaneRoutes.generation == topology.dataPlaneGeneration {
            return cachedDataPlaneRoutes.routes
        }
        guard let routes = topology.dataPlaneRoutes() else { return self.routes() }
        cachedDataPlaneRoutes = (topology.dataPlaneGeneration, routes)
        return routes
    }

    /// The routes over the current topology.
    public mutating func routes() -> Routes {
        if let cachedRoutes { return cachedRoutes }
        let routes: Routes
        if let cachedHops, cachedHops.generation == topology.linkGeneration {
            routes = topology.routes(hops: cachedHops.hops)
        } else {
            routes = topology.routes()
            cachedHops = (topology.linkGeneration, routes.hops)
        }
        cachedRoutes = routes
        return routes
    }

    /// When gossip is waiting to leave, changes to forward or an own update held back by
    /// `ownUpdateInterval`: call `forwardWaiting(now:)` (or `tick`) then. An own update then
    /// leaves when its interval ends, not at the next tick after (up to 0.5 s later).
    public var forwardDue: Double? {
        let forward = forwardQueue.isEmpty ? nil : lastForward + timings.forwardInterval
        let own = ownDue
        guard let forward else { return own }
        return own.map { min($0, forward) } ?? forward
    }

    /// When the pending own update may leave (flushOwn's one rule): `ownUpdateInterval` after
    /// the last one, and, unless it came after a quiet spell or must go at once, once the entry
    /// has been still for `ownUpdateInterval` or held for `ownUpdateHold`.
    private var ownDue: Double? {
        guard ownPending else { return nil }
        let spaced = lastOwnSent + timings.ownUpdateInterval
        guard !ownPendingAtOnce else { return spaced }
        return max(spaced, min(lastOwnChange + timings.ownUpdateInterval, ownPendingSince + timings.ownUpdateHold))
    }

    /// The removed peers still remembered, for status and tests.
    public var departed: [PeerName: PeerVersion] { departures.mapValues(\.version) }

    // MARK: events

    /// This router's connections or nickname changed (already cut to wire limits by Topology).
    public mutating func setOwn(nickname: String, connections: [ConnectionEntry], now: Double) -> GossipEffects {
        var effects = GossipEffects()
        if editTopology({ $0.setOwn(nickname: nickname, connections: connections) }) {
            ownChanged(now: now, atOnce: false)
            topologyChanged(now: now, &effects)
        }
        flushOwn(now: now, &effects)
        return effects
    }

    /// A link to `peer` completed its handshake. When the peer was not reachable before (a new
    /// router, or a link that joins two parts of the mesh), this end sends a full digest and the
    /// peer answers with what it lacks. A peer already reachable through others is in the same
    /// part: broadcasts reach both ends anyway, and anti-entropy covers what was in flight.
    public mutating func linkUp(_ peer: PeerName, now: Double) -> GossipEffects {
        var effects = GossipEffects()
        let known = routes().isReachable(peer)
        if !neighbours.contains(peer) {
            neighbours.append(peer)
            neighbours.sort()
        }
        // A peer we talk to directly is alive, whatever we removed before.
        departures[peer] = nil
        if !known {
            effects.sends.append(GossipSend(to: peer, type: .gossipDigest, payload: GossipDigest.full(heldVersions(), wantsReply: false).encode()))
        }
        return effects
    }

    public mutating func linkDown(_ peer: PeerName) {
        neighbours.removeAll { $0 == peer }
    }

    /// A GOSSIP or GOSSIP_DIGEST message from neighbour `from`. Throws `WireError` when it does
    /// not decode; the link is then closed as a protocol error. `admit` sees each entry that
    /// would change the topology before it is merged (the router's identity check, docs/protocol.md
    /// §4): an entry it refuses is ignored, the one held (if any) kept, and nothing is forwarded.
    public mutating func receive(from: PeerName, type: MessageType, payload: [UInt8], now: Double,
                                 admit: (PeerEntry) -> Bool = { _ in true }) throws -> GossipEffects {
        var effects = GossipEffects()
        switch type {
        case .gossip:
            var entries = try TopologyUpdate.decode(payload).peers
            // Only news is screened: an entry held already changes nothing, and a busy mesh's
            // gossip is mostly that.
            entries.removeAll { topology.isNews($0) && !admit($0) }
            merge(entries, from: from, now: now, &effects)
        case .gossipDigest:
            answer(try GossipDigest.decode(payload), from: from, &effects)
        default:
            break
        }
        return effects
    }

    /// Timers: coalesced own updates, anti-entropy, removal of peers unreachable past the grace.
    public mutating func tick(now: Double) -> GossipEffects {
        var effects = GossipEffects()
        flushOwn(now: now, &effects)
        flushForwards(now: now, &effects)
        if departures.contains(where: { $0.value.until <= now }) { departures = departures.filter { $0.value.until > now } }

        // Reachability changes only with the topology: an idle tick reads nothing per peer.
        if let staleSince = reachabilityStaleSince {
            reachabilityStaleSince = nil
            let routes = routes()
            if routes.reachableCount == topology.peers.count {
                unreachableSince = [:]
            } else {
                unreachableSince = unreachableSince.filter { !routes.isReachable($0.key) && topology.peers[$0.key] != nil }
                for v in topology.versions where !routes.isReachable(v.name) && unreachableSince[v.name] == nil {
                    unreachableSince[v.name] = staleSince
                }
            }
        }
        let gone = unreachableSince.isEmpty ? [] : unreachableSince.filter { now - $0.value >= timings.unreachableGrace }.keys.sorted()
        if !gone.isEmpty {
            for name in gone {
                if let entry = topology.peers[name] {
                    departures[name] = (PeerVersion(entry), now + timings.departureMemory)
                }
                editTopology { $0.forget(name) }
                unreachableSince[name] = nil
            }
            effects.removed = gone
            topologyChanged(now: now, &effects)
        }

        if now >= nextAntiEntropy || settledSummaryAt.map({ now >= $0 }) == true {
            nextAntiEntropy = now + timings.antiEntropyInterval
            settledSummaryAt = nil
            if !neighbours.isEmpty {
                let to = neighbours[rotation % neighbours.count]
                rotation &+= 1
                effects.sends.append(GossipSend(to: to, type: .gossipDigest, payload: summary().encode()))
            }
        }
        return effects
    }

    /// Sends the changes waiting since the last forward and a held-back own update (`forwardDue`).
    public mutating func forwardWaiting(now: Double) -> GossipEffects {
        var effects = GossipEffects()
        flushOwn(now: now, &effects)
        flushForwards(now: now, &effects)
        return effects
    }

    // MARK: rules

    /// The versions this router vouches for: itself and every peer it can reach. Unreachable
    /// entries waiting out their grace are neither announced nor sent, so they cannot spread.
    mutating func heldVersions() -> [PeerVersion] {
        if let cachedHeld { return cachedHeld }
        let routes = routes()
        let held = routes.reachableCount == topology.peers.count ? topology.versions : topology.versions.filter { routes.isReachable($0.name) }
        cachedHeld = held
        return held
    }

    /// The summary digest of `heldVersions()` (cached until the topology changes).
    mutating func summary() -> GossipDigest {
        if let cachedSummary { return cachedSummary }
        let summary = GossipDigest.summary(of: heldVersions())
        cachedSummary = summary
        return summary
    }

    private mutating func merge(_ entries: [PeerEntry], from: PeerName, now: Double, _ effects: inout GossipEffects) {
        // Entries of removed peers no newer than what we removed are taken only if they turn out
        // reachable (the peer is alive behind a path we had lost), never to sit unreachable.
        let suspects = departures.isEmpty ? [] : Set(entries.filter { e in
            guard let d = departures[e.name] else { return false }
            return !PeerVersion(e).isNewer(than: d.version)
        }.map(\.name))
        // A neighbour that sends the version waiting to be forwarded holds it: it is not sent there.
        if !forwardQueue.isEmpty {
            for e in entries {
                guard let holders = forwardQueue[e.name], holders.from != from, !holders.also.contains(from),
                      let mine = topology.peers[e.name], mine.version == e.version, mine.uid == e.uid else { continue }
                forwardQueue[e.name]!.also.append(from)
            }
        }
        // Most entries of a busy mesh are ones already held: nothing to merge, nothing to drop.
        guard entries.contains(where: topology.isNews) else { return }
        var changed = editTopology { $0.merge(TopologyUpdate(peers: entries)) }
        guard !changed.isEmpty else { return }
        invalidate(now: now)
        if !suspects.isEmpty {
            let routes = routes()
            var dropped = false
            for name in suspects where topology.peers[name] != nil {
                if routes.isReachable(name) {
                    departures[name] = nil
                } else {
                    editTopology { $0.forget(name) }
                    dropped = true
                }
            }
            if dropped {
                changed.removeAll { suspects.contains($0.name) && topology.peers[$0.name] == nil }
                invalidate(now: now)
            }
        }
        guard !changed.isEmpty else { return }
        topologyChanged(now: now, &effects)
        if changed.contains(where: { $0.name == topology.ownName }) {
            // An earlier incarnation's entry or a short-id move: our own entry is news.
            ownChanged(now: now, atOnce: true)
            flushOwn(now: now, &effects)
        }
        guard neighbours.contains(where: { $0 != from }) else { return }  // a leaf forwards nothing
        for entry in changed where entry.name != topology.ownName { forwardQueue[entry.name] = (from, []) }
        flushForwards(now: now, &effects)
    }

    /// Sends the waiting changes, each along the broadcast tree of the peer it describes, so
    /// every router gets it once when views agree; where they do not yet, anti-entropy fills the
    /// gap. Trees are judged on the topology at the time of sending, for all the batch at once.
    private mutating func flushForwards(now: Double, _ effects: inout GossipEffects) {
        guard !forwardQueue.isEmpty, now >= lastForward + timings.forwardInterval else { return }
        lastForward = now
        let batch = forwardQueue
        forwardQueue = [:]
        let sources = batch.keys.filter { topology.peers[$0] != nil }.sorted()
        var forward: [PeerName: [[UInt8]]] = [:]
        let children: [PeerName: [PeerName]]
        if let cachedTable, cachedTable.generation == topology.linkGeneration {
            children = topology.broadcastNextHops(from: sources, table: cachedTable.table)
        } else if sources.count <= BroadcastTable.cheaperFrom {
            children = topology.broadcastNextHops(from: sources)
        } else if let table = topology.broadcastTable() {
            cachedTable = (topology.linkGeneration, table)
            children = topology.broadcastNextHops(from: sources, table: table)
        } else {
            children = [:]
        }
        for source in sources {
            guard let next = children[source], let entry = topology.peers[source] else { continue }
            let encoded = TopologyUpdate.encodedEntry(entry)  // once, however many children
            let holders = batch[source]!
            for n in next where n != holders.from && !holders.also.contains(n) { forward[n, default: []].append(encoded) }
        }
        for next in forward.keys.sorted() {
            for payload in TopologyUpdate.payloads(encoded: forward[next]!, maxBytes: Self.payloadBudget) {
                effects.sends.append(GossipSend(to: next, type: .gossip, payload: payload))
            }
        }
    }

    private mutating func answer(_ digest: GossipDigest, from: PeerName, _ effects: inout GossipEffects) {
        switch digest {
        case .summary:
            if digest != summary() {
                effects.sends.append(GossipSend(to: from, type: .gossipDigest, payload: GossipDigest.full(heldVersions(), wantsReply: true).encode()))
            }
        case .full(let theirs, let wantsReply):
            let held = heldVersions()
            var theirVersions: [PeerName: PeerVersion] = [:]
            for v in theirs { theirVersions[v.name] = v }
            let missing = held.filter { mine in theirVersions[mine.name].map { mine.isNewer(than: $0) } ?? true }
            send(missing.compactMap { topology.peers[$0.name] }, to: from, &effects)
            guard wantsReply else { return }
            let lacking = theirs.contains { v in
                if let d = departures[v.name], !v.isNewer(than: d.version) { return false }
                guard let mine = topology.peers[v.name] else { return true }
                return v.isNewer(than: PeerVersion(mine))
            }
            if lacking {
                effects.sends.append(GossipSend(to: from, type: .gossipDigest, payload: GossipDigest.full(held, wantsReply: false).encode()))
            }
        }
    }

    /// `atOnce`: the change must not wait for a burst to end (the entry of an earlier
    /// incarnation, a short-id move).
    private mutating func ownChanged(now: Double, atOnce: Bool) {
        let quiet = now - lastOwnChange >= timings.ownUpdateInterval
        lastOwnChange = now
        if !ownPending {
            ownPending = true
            ownPendingSince = now
            ownPendingAtOnce = quiet
        }
        ownPendingAtOnce = ownPendingAtOnce || atOnce
    }

    /// The pending own update leaves when the spacing allows and it either came after a quiet
    /// spell, or the entry has stopped changing, or it has been held for `ownUpdateHold`.
    private mutating func flushOwn(now: Double, _ effects: inout GossipEffects) {
        guard let due = ownDue, now >= due else { return }
        ownPending = false
        lastOwnSent = now
        let payloads = TopologyUpdate.payloads([topology.own], maxBytes: Self.payloadBudget)
        for next in neighbours {
            for payload in payloads { effects.sends.append(GossipSend(to: next, type: .gossip, payload: payload)) }
        }
    }

    private func send(_ entries: [PeerEntry], to: PeerName, _ effects: inout GossipEffects) {
        guard !entries.isEmpty else { return }
        for payload in TopologyUpdate.payloads(entries, maxBytes: Self.payloadBudget) {
            effects.sends.append(GossipSend(to: to, type: .gossip, payload: payload))
        }
    }

    /// Every change of the topology goes through here (see `cachedRoutes`).
    private mutating func editTopology<T>(_ edit: (inout Topology) -> T) -> T {
        cachedRoutes = nil
        cachedDataPlaneRoutes = nil
        return edit(&topology)
    }

    private mutating func invalidate(now: Double) {
        cachedRoutes = nil
        if reachabilityStaleSince == nil { reachabilityStaleSince = now }
        cachedHeld = nil
        cachedSummary = nil
    }

    private mutating func topologyChanged(now: Double, _ effects: inout GossipEffects) {
        invalidate(now: now)
        effects.topologyChanged = true
        settledSummaryAt = now + timings.settledSummaryDelay
    }
}
