import Foundation
import WeftTestSupport
import WeftWire
@testable import WeftMesh

/// Routers of WeftMesh/Gossip.swift in memory, on a simulated network with injected time: links
/// deliver in order after a per-pair latency (1–20 ms), every message travels encoded (the real
/// codecs), a link reset loses what was in flight on it, and routers dial what they learn
/// (at most 16 attempts at once, as Router does) where the underlay lets them.
struct MeshSimulator {
    struct Router {
        var name: PeerName
        var gossip: Gossip
        var alive = true
        var links: Set<Int> = []
        var dialing: Set<Int> = []
        /// Who this router can reach directly on the underlay.
        var reachable: Set<Int> = []
        /// Counts starts, so that a stopped router's pending tick does not run after a restart.
        var incarnation = 0
        /// What the last look for peers to dial saw (Router looks when the topology changed):
        /// candidates change only with the listings or this router's own links.
        var lookedAt: (listings: UInt64, links: Int)?
        /// When a forward of waiting gossip is scheduled (Gossip.forwardDue).
        var forwardAt: Double?
        /// The last version of its own entry this router sent (`Counters.ownVersions`).
        var sentVersion: UInt64?
    }

    private enum Event {
        case deliver(from: Int, to: Int, epoch: Int, type: MessageType, payload: [UInt8])
        case linkUp(Int, Int)
        case tick(Int, incarnation: Int)
        case forward(Int, incarnation: Int)
    }

    private struct Scheduled {
        var time: Double
        var seq: Int
        var event: Event
    }

    /// Counts since the last `resetCounters()`: messages and their bytes on the wire (payload +
    /// type 1 + length 4 + Poly1305 tag 16, as on a sealed gossip link; TCP/IP headers excluded).
    struct Counters {
        var messages = 0
        var bytes = 0
        var summaries = 0
        var fullDigests = 0
        var gossipMessages = 0
        /// Peer entries carried in gossip messages.
        var entries = 0
        /// With `countsHeld` only: entries the receiver already held at that version, and
        /// messages that are a router's own update.
        var heldEntries = 0
        var ownUpdates = 0
        /// Versions of their own entry that routers sent (each one is flooded to every router).
        var ownVersions = 0
    }

    /// WEFT_SIM_HELD set: decode every delivery once more to count entries the receiver already
    /// held (where dissemination repeats itself). Slower; for looking into the figures.
    static let countsHeld = ProcessInfo.processInfo.environment["WEFT_SIM_HELD"] != nil

    static let frameOverhead = 21
    static let tickInterval = 0.5
    static let maxDialing = 16

    private(set) var routers: [Router] = []
    private(set) var now = 0.0
    var counters = Counters()
    private var index: [PeerName: Int] = [:]
    private var queue: [Scheduled] = []
    private var seq = 0
    private var epochs: [Int: Int] = [:]
    private var lastDelivery: [Int: Double] = [:]
    private var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    // MARK: building the mesh

    /// Adds a router that can reach `reachable` (indexes of routers added before or after; the
    /// relation is made symmetric) and returns its index. It does nothing until `join`.
    mutating func addRouter(reachable: [Int] = []) -> Int {
        var name = PeerName.random(using: &rng)
        while index[name] != nil { name = PeerName.random(using: &rng) }
        let i = routers.count
        let own = PeerEntry(name: name, nickname: "r\(i)", uid: rng.next() | 1, version: 1,
                            shortId: Topology.initialShortId(for: name), connections: [])
        routers.append(Router(name: name, gossip: Gossip(own: own), alive: false))
        index[name] = i
        for j in reachable { allow(i, j) }
        return i
    }

    mutating func allow(_ a: Int, _ b: Int) {
        guard a != b else { return }
        routers[a].reachable.insert(b)
        routers[b].reachable.insert(a)
    }

    /// Starts router `i` now, dialing `seed` (if any) as an address named on its command line.
    mutating func join(_ i: Int, seed: Int?) {
        routers[i].alive = true
        routers[i].incarnation += 1
        schedule(.tick(i, incarnation: routers[i].incarnation), at: now + Self.tickInterval * Double.random(in: 0..<1, using: &rng))
        if let seed { dial(i, seed) }
    }

    /// Stops router `i` as a SIGTERM does: its links close at both ends at once.
    mutating func stop(_ i: Int) {
        routers[i].alive = false
        for j in routers[i].links.sorted() { dropLink(i, j) }
        routers[i].dialing = []
    }

    /// Drops a link as a reset would: whatever was in flight on it is lost.
    mutating func dropLink(_ a: Int, _ b: Int) {
        guard routers[a].links.contains(b) else { return }
        epochs[key(a, b), default: 0] += 1
        for (x, y) in [(a, b), (b, a)] {
            routers[x].links.remove(y)
            routers[x].gossip.linkDown(routers[y].name)
            if routers[x].alive { ownChanged(x) }
        }
    }

    // MARK: running

    /// Runs until `time`, checking `until` every `every` seconds of simulated time; returns the
    /// time the check first held, or nil.
    @discardableResult
    mutating func run(for duration: Double, checkEvery every: Double = 1, until: ((inout MeshSimulator) -> Bool)? = nil) -> Double? {
        let end = now + duration
        var nextCheck = now + every
        while true {
            let nextEvent = queue.first?.time ?? .infinity
            let t = min(nextEvent, nextCheck, end)
            now = t
            if t == nextCheck {
                nextCheck += every
                if let until, until(&self) { return now }
                continue
            }
            if t == end { return nil }
            handle(popEvent().event)
        }
    }

    mutating func resetCounters() { counters = Counters() }

    // MARK: what the routers hold

    /// Every live router holds exactly the current entry of every live router, and nothing of
    /// the stopped ones: its versions (Topology.versions, in name order) are the truth's.
    func converged() -> Bool {
        let live = routers.indices.filter { routers[$0].alive }
        let truth = live.map { PeerVersion(routers[$0].gossip.topology.own) }.sorted { $0.name < $1.name }
        return live.allSatisfy { routers[$0].gossip.topology.versions == truth }
    }

    /// How many live routers list any of `names` in their topology.
    func holders(of names: Set<PeerName>) -> Int {
        routers.filter { r in r.alive && names.contains { r.gossip.topology.peers[$0] != nil } }.count
    }

    func name(_ i: Int) -> PeerName { routers[i].name }

    // MARK: internals

    private func key(_ a: Int, _ b: Int) -> Int { min(a, b) << 32 | max(a, b) }

    /// 1–20 ms, fixed per pair.
    private func latency(_ a: Int, _ b: Int) -> Double {
        var g = SplitMix64(seed: UInt64(key(a, b)))
        return 0.001 + Double(g.next() % 19_000) / 1_000_000
    }

    private mutating func schedule(_ event: Event, at time: Double) {
        seq += 1
        queue.append(Scheduled(time: time, seq: seq, event: event))
        var child = queue.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(queue[child], queue[parent]) else { break }
            queue.swapAt(child, parent)
            child = parent
        }
    }

    private func before(_ a: Scheduled, _ b: Scheduled) -> Bool { (a.time, a.seq) < (b.time, b.seq) }

    private mutating func popEvent() -> Scheduled {
        let top = queue[0]
        let last = queue.removeLast()
        if !queue.isEmpty {
            queue[0] = last
            var parent = 0
            while true {
                let l = 2 * parent + 1, r = l + 1
                var best = parent
                if l < queue.count, before(queue[l], queue[best]) { best = l }
                if r < queue.count, before(queue[r], queue[best]) { best = r }
                guard best != parent else { break }
                queue.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }

    private mutating func dial(_ i: Int, _ j: Int) {
        guard routers[i].alive, !routers[i].links.contains(j), !routers[i].dialing.contains(j),
              routers[i].reachable.contains(j) else { return }
        routers[i].dialing.insert(j)
        // TCP handshake, preamble, Noise: two round trips.
        schedule(.linkUp(i, j), at: now + 4 * latency(i, j))
    }

    private mutating func handle(_ event: Event) {
        switch event {
        case .linkUp(let i, let j):
            routers[i].dialing.remove(j)
            guard routers[i].alive, routers[j].alive, !routers[i].links.contains(j) else { return }
            routers[i].links.insert(j)
            routers[j].links.insert(i)
            routers[j].dialing.remove(i)
            for (x, y) in [(i, j), (j, i)] {
                let effects = routers[x].gossip.linkUp(routers[y].name, now: now)
                apply(x, effects)
            }
            ownChanged(i)
            ownChanged(j)
        case .tick(let i, let incarnation):
            guard routers[i].alive, routers[i].incarnation == incarnation else { return }
            tick(i)
            schedule(.tick(i, incarnation: incarnation), at: now + Self.tickInterval)
        case .forward(let i, let incarnation):
            guard routers[i].alive, routers[i].incarnation == incarnation else { return }
            routers[i].forwardAt = nil
            apply(i, routers[i].gossip.forwardWaiting(now: now))
        case .deliver(let from, let to, let epoch, let type, let payload):
            guard epochs[key(from, to), default: 0] == epoch, routers[to].alive else { return }
            if Self.countsHeld, type == .gossip, let u = try? TopologyUpdate.decode(payload) {
                counters.heldEntries += u.peers.filter { !routers[to].gossip.topology.isNews($0) }.count
            }
            do {
                let effects = try routers[to].gossip.receive(from: routers[from].name, type: type, payload: payload, now: now)
                apply(to, effects)
            } catch {
                preconditionFailure("router \(to) could not decode gossip from \(from): \(error)")
            }
        }
    }

    private mutating func tick(_ i: Int) {
        apply(i, routers[i].gossip.tick(now: now))
        let look = (routers[i].gossip.topology.listingGeneration, routers[i].links.count)
        guard routers[i].lookedAt.map({ $0 != look }) ?? true, routers[i].dialing.count < Self.maxDialing else { return }
        routers[i].lookedAt = look
        // Router reads every dial candidate (Topology.dialCandidates) in name order; here only
        // those the underlay lets this router reach can be dialed, so those are all it asks
        // about (a thousand candidates a look, of which about ten are reachable, was a sixth
        // of the simulation's time). The same dials in the same order.
        let topology = routers[i].gossip.topology
        let dialable = routers[i].reachable.filter { j in
            !routers[i].links.contains(j) && !routers[i].dialing.contains(j) && topology.dialAddress(for: routers[j].name) != nil
        }.sorted { routers[$0].name < routers[$1].name }
        var last: PeerName?
        for j in dialable {
            guard routers[i].dialing.count < Self.maxDialing else { break }
            dial(i, j)
            last = routers[j].name
        }
        // Router stops at the cap and looks again on the next tick when candidates are left.
        if routers[i].dialing.count >= Self.maxDialing, let last, candidatesRemain(i, after: last) {
            routers[i].lookedAt = nil
        }
    }

    /// Whether `dialCandidates` lists a peer named above `name` (the ones after the cap).
    private func candidatesRemain(_ i: Int, after name: PeerName) -> Bool {
        let topology = routers[i].gossip.topology
        let connected = Set(routers[i].links.map { routers[$0].name })
        for v in topology.versions.reversed() {
            guard v.name > name else { return false }
            if !connected.contains(v.name), topology.dialAddress(for: v.name) != nil { return true }
        }
        return false
    }

    private mutating func ownChanged(_ i: Int) {
        let connections = routers[i].links.map { j in
            ConnectionEntry(remote: routers[j].name, address: "10.\(j >> 16 & 255).\(j >> 8 & 255).\(j & 255):6783",
                            established: true, outbound: i < j, dataPlane: DataPlaneReport(mode: .sleeve, encrypted: true))
        }.sorted { $0.remote < $1.remote }
        apply(i, routers[i].gossip.setOwn(nickname: "r\(i)", connections: connections, now: now))
    }

    private mutating func apply(_ i: Int, _ effects: GossipEffects) {
        for send in effects.sends {
            guard let j = index[send.to], routers[i].links.contains(j) else { continue }
            counters.messages += 1
            counters.bytes += send.payload.count + Self.frameOverhead
            if send.type == .gossip {
                counters.gossipMessages += 1
                counters.entries += Int(send.payload[0]) << 8 | Int(send.payload[1])
                // An entry starts with its peer's name; the own entry sent is always the current one.
                if send.payload.count >= 8, send.payload[2..<8].reduce(0, { $0 << 8 | UInt64($1) }) == routers[i].name.value {
                    let version = routers[i].gossip.topology.own.version
                    if routers[i].sentVersion != version {
                        routers[i].sentVersion = version
                        counters.ownVersions += 1
                    }
                }
                if Self.countsHeld, Array(send.payload[2..<8]) == routers[i].name.bytes { counters.ownUpdates += 1 }
            } else if send.payload.first == 0 {
                counters.summaries += 1
            } else {
                counters.fullDigests += 1
            }
            let k = key(i, j) << 1 | (i < j ? 0 : 1)
            let at = max(now + latency(i, j), lastDelivery[k] ?? 0)
            lastDelivery[k] = at
            schedule(.deliver(from: i, to: j, epoch: epochs[key(i, j), default: 0], type: send.type, payload: send.payload), at: at)
        }
        // As Router does: a one-shot timer for gossip waiting to be forwarded.
        if let due = routers[i].gossip.forwardDue, routers[i].forwardAt.map({ due < $0 }) ?? true {
            routers[i].forwardAt = due
            schedule(.forward(i, incarnation: routers[i].incarnation), at: max(due, now))
        }
    }
}
