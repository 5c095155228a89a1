// One router's address management as a state machine (docs/protocol.md §7): the ledger, the
// seeding votes, what every router announces, and this router's allocations. The router feeds
// it gossip and requests and sends what it returns; it never touches a socket or a clock.
import WeftWire

public struct AddressManager: Sendable {
    /// What a router tells the mesh about its share: free blocks (for the donor choice) and
    /// every address it holds (so a hand-given address is checked mesh-wide). Versioned by
    /// that router.
    public struct Announcement: Equatable, Sendable {
        public var version: UInt64
        public var freeBlocks: UInt32
        public var holdings: [Holding]
        /// Addresses given by hand outside the range: not managed, announced so that a second
        /// workload given the same one elsewhere gets a warning.
        public var outside: [OutsideHolding] = []
    }

    public struct OutsideHolding: Equatable, Sendable {
        public var address: IPAddress
        public var holder: String
    }

    public struct Holding: Equatable, Sendable {
        public var offset: UInt64
        public var holder: String
    }

    /// A gossip message: any part may be absent (a delta carries only what changed).
    public struct Update: Equatable, Sendable {
        public var ledger: BlockLedger?
        public var votes: [(name: PeerName, vote: SeedVote)]
        public var announcements: [(name: PeerName, announcement: Announcement)]
        /// The sender's range, as decoded (nil for an update built here).
        public var range: AddressRange? = nil

        public var isEmpty: Bool { ledger == nil && votes.isEmpty && announcements.isEmpty }

        public static func == (a: Update, b: Update) -> Bool {
            a.ledger == b.ledger && a.votes.elementsEqual(b.votes) { $0.name == $1.name && $0.vote == $1.vote }
                && a.announcements.elementsEqual(b.announcements) { $0.name == $1.name && $0.announcement == $1.announcement }
        }
    }

    public enum AllocationOutcome: Equatable, Sendable {
        case allocated(IPAddress)
        /// The pool is not seeded yet (waiting for a quorum of the consensus size).
        case waitingForSeed
        /// No free address here: ask `donor` for space and try again when the ledger changes.
        case needSpace(donor: PeerName)
        /// No free address anywhere this router can reach.
        case exhausted
    }

    public let local: PeerName
    public internal(set) var ledger: BlockLedger
    public internal(set) var consensus: SeedConsensus
    public internal(set) var allocations: AddressAllocations
    public internal(set) var announcements: [PeerName: Announcement] = [:]
    /// Addresses given by hand outside the range, by holder.
    public internal(set) var outside: [String: IPAddress] = [:]
    /// Peers whose pool this router refused to merge, and why (for status).
    public private(set) var refusedPools: [PeerName: String] = [:]
    /// The highest ballot seen at the last proposeIfDue.
    private var lastHighestBallot: SeedBallot?

    public var range: AddressRange { ledger.range }

    public init(local: PeerName, range: AddressRange, consensusSize: Int) {
        self.local = local
        ledger = BlockLedger(range: range)
        consensus = SeedConsensus(local: local, consensusSize: consensusSize)
        allocations = AddressAllocations(range: range)
        announcements[local] = Announcement(version: 0, freeBlocks: 0, holdings: [])
    }

    public var ownedBlocks: [Int] { ledger.blocks(ownedBy: local) }

    /// Everything, for a new link.
    public var fullUpdate: Update {
        Update(ledger: ledger, votes: consensus.votes.map { ($0.key, $0.value) }.sorted { $0.name < $1.name },
               announcements: announcements.map { ($0.key, $0.value) }.sorted { $0.name < $1.name })
    }

    // MARK: Gossip

    /// Merges an update from `peer`; returns what changed here, to pass on to the other links.
    public mutating func receive(_ update: Update, from peer: PeerName) -> Update {
        var out = Update(ledger: nil, votes: [], announcements: [])
        if let theirs = update.range, theirs != range {
            refusedPools[peer] = "its range is \(theirs), ours \(range)"
            return out
        }
        if let theirs = update.ledger {
            switch ledger.merge(theirs) {
            case .changed: out.ledger = ledger; refusedPools[peer] = nil
            case .unchanged: refusedPools[peer] = nil
            case .refused(let why): refusedPools[peer] = why
            }
        }
        let before = consensus.ownVote
        for (name, vote) in update.votes where name != local && (consensus.votes[name].map { vote.isNewer(than: $0) } ?? true) {
            consensus.receive(vote, from: name)
            out.votes.append((name, vote))
        }
        if consensus.ownVote != before { out.votes.append((local, consensus.ownVote)) }
        if !ledger.isSeeded, let decided = consensus.seededLedger(range: range) {
            _ = ledger.merge(decided)
            out.ledger = ledger
        }
        for (name, announcement) in update.announcements where name != local {
            if (announcements[name]?.version ?? 0) < announcement.version || announcements[name] == nil {
                announcements[name] = announcement
                out.announcements.append((name, announcement))
            }
        }
        if out.ledger != nil, let own = refreshAnnouncement() { out.announcements.append((local, own)) }
        return out
    }

    /// Proposes the division of the range (docs/protocol.md §7.2) when it is undivided, a
    /// quorum is reachable and either this router needs space or every router of the consensus
    /// size is reachable; never while another ballot moves (one that changed since the last
    /// call), so proposers do not outbid each other for ever. The router calls it once a tick.
    public mutating func proposeIfDue(reachable: [PeerName], needed: Bool) -> Update? {
        let highest = consensus.highestPromised
        defer { lastHighestBallot = consensus.highestPromised }
        guard !ledger.isSeeded, consensus.decision == nil, reachable.count + 1 >= consensus.quorum,
              needed || reachable.count + 1 >= consensus.size,
              highest == nil || highest == lastHighestBallot else { return nil }
        consensus.propose(members: reachable)
        var out = Update(ledger: nil, votes: [(local, consensus.ownVote)], announcements: [])
        if let decided = consensus.seededLedger(range: range) {
            _ = ledger.merge(decided)
            out.ledger = ledger
            if let own = refreshAnnouncement() { out.announcements.append((local, own)) }
        }
        return out
    }

    // MARK: Allocation

    /// An address for `holder` (the same one it has, if any). Before the range is divided the
    /// answer is to wait (and to call proposeIfDue with `needed`).
    public mutating func allocate(for holder: String, reachable: [PeerName]) -> (AllocationOutcome, Update?) {
        if let offset = allocations.byHolder[holder] { return (.allocated(range.address(at: offset)), nil) }
        guard ledger.isSeeded else { return (.waitingForSeed, nil) }
        let taken = takenElsewhere
        if let offset = allocations.allocate(for: holder, owned: ownedBlocks, takenElsewhere: { taken.contains($0) }) {
            return (.allocated(range.address(at: offset)), announcementUpdate())
        }
        let candidates = reachable.compactMap { name in announcements[name].map { (name: name, freeBlocks: Int($0.freeBlocks)) } }
        guard let donor = IPAMRules.donor(candidates) else { return (.exhausted, nil) }
        return (.needSpace(donor: donor), nil)
    }

    public enum TakeOutcome: Equatable, Sendable {
        case taken
        /// Another workload holds it: `holder` on `router`.
        case held(router: PeerName, holder: String)
        /// Outside the range: not managed; recorded and announced. `alsoOn`: other workloads
        /// in the mesh given the same address by hand (the caller warns).
        case outsideRange(alsoOn: [(router: PeerName, holder: String)])

        public static func == (a: TakeOutcome, b: TakeOutcome) -> Bool {
            switch (a, b) {
            case (.taken, .taken): return true
            case (.held(let r1, let h1), .held(let r2, let h2)): return r1 == r2 && h1 == h2
            case (.outsideRange(let x), .outsideRange(let y)): return x.elementsEqual(y) { $0.router == $1.router && $0.holder == $1.holder }
            default: return false
            }
        }
    }

    /// Records an address given by hand.
    public mutating func take(_ address: IPAddress, for holder: String) -> (TakeOutcome, Update?) {
        guard let offset = range.offset(of: address) else {
            let alsoOn = announcements.filter { $0.key != local }.sorted { $0.key < $1.key }.flatMap { name, announcement in
                announcement.outside.filter { $0.address == address }.map { (router: name, holder: $0.holder) }
            }
            outside[holder] = address
            return (.outsideRange(alsoOn: alsoOn), announcementUpdate())
        }
        if let other = allocations.holder(at: offset), other != holder { return (.held(router: local, holder: other), nil) }
        for (name, announcement) in announcements where name != local {
            if let holding = announcement.holdings.first(where: { $0.offset == offset }) {
                return (.held(router: name, holder: holding.holder), nil)
            }
        }
        _ = allocations.take(offset, for: holder)
        return (.taken, announcementUpdate())
    }

    public mutating func release(_ holder: String) -> Update? {
        let released = allocations.release(holder) != nil
        guard outside.removeValue(forKey: holder) != nil || released else { return nil }
        return announcementUpdate()
    }

    /// A peer asked for space: the blocks given (gossip the returned update), if any.
    public mutating func donate(to peer: PeerName) -> Update? {
        guard ledger.isSeeded, peer != local else { return nil }
        let owned = ownedBlocks
        let gift = IPAMRules.donation(free: allocations.freeBlocks(owned: owned), roomInUsedBlocks: allocations.freeCount(owned: owned) > 0)
        guard !gift.isEmpty else { return nil }
        ledger.donate(gift, from: local, to: peer)
        var out = Update(ledger: ledger, votes: [], announcements: [])
        if let own = refreshAnnouncement() { out.announcements.append((local, own)) }
        return out
    }

    /// `weft rmpeer`: takes every block of `departed` (the caller checks it is not connected).
    public mutating func reclaim(from departed: PeerName) -> (blocks: Int, update: Update?) {
        guard ledger.isSeeded, departed != local else { return (0, nil) }
        let count = ledger.reclaim(from: departed, to: local)
        announcements[departed] = nil
        guard count > 0 else { return (0, nil) }
        var out = Update(ledger: ledger, votes: [], announcements: [])
        if let own = refreshAnnouncement() { out.announcements.append((local, own)) }
        return (count, out)
    }

    // MARK: Own announcement

    private var takenElsewhere: Set<UInt64> {
        var taken: Set<UInt64> = []
        for (name, announcement) in announcements where name != local { for h in announcement.holdings { taken.insert(h.offset) } }
        return taken
    }

    func currentAnnouncement(version: UInt64) -> Announcement {
        let owned = ownedBlocks
        return Announcement(version: version, freeBlocks: UInt32(allocations.freeBlocks(owned: owned).count),
                            holdings: allocations.byHolder.map { Holding(offset: $0.value, holder: $0.key) }.sorted { $0.offset < $1.offset },
                            outside: outside.map { OutsideHolding(address: $0.value, holder: $0.key) }.sorted { $0.holder < $1.holder })
    }

    /// A new own announcement when what it says changed.
    private mutating func refreshAnnouncement() -> Announcement? {
        let old = announcements[local]!
        var fresh = currentAnnouncement(version: old.version)
        guard fresh != old else { return nil }
        fresh.version = old.version + 1
        announcements[local] = fresh
        return fresh
    }

    private mutating func announcementUpdate() -> Update? {
        refreshAnnouncement().map { Update(ledger: nil, votes: [], announcements: [(local, $0)]) }
    }
}
