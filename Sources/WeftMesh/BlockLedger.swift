// Who owns each block of the allocation range: a replicated ledger every router keeps a copy of
// and merges from gossip (docs/protocol.md §7.1). Only a block's owner writes it (donation), so
// concurrent writes can come only from two operators reclaiming the same departed router's
// space at once; the merge still picks one winner deterministically.
import WeftWire

public struct BlockLedger: Equatable, Sendable {
    /// Who initialised the ledger, and a random nonce: ledgers of different seeds are two
    /// independent pools and never merge (merging them could give one address to two workloads).
    public struct Seed: Hashable, Sendable, CustomStringConvertible {
        public let by: PeerName
        public let nonce: UInt64
        public init(by: PeerName, nonce: UInt64) { self.by = by; self.nonce = nonce }
        public var description: String { "\(by)/\(String(nonce, radix: 16))" }
    }

    /// One block's owner and the version of that fact.
    public struct Claim: Equatable, Sendable {
        public var owner: PeerName
        public var version: UInt32
        public init(owner: PeerName, version: UInt32) { self.owner = owner; self.version = version }

        /// The merge order: the higher version wins; at the same version (concurrent reclaims),
        /// the larger owner name.
        @inline(__always)
        func beats(_ other: Claim) -> Bool {
            version != other.version ? version > other.version : owner > other.owner
        }
    }

    public enum MergeResult: Equatable, Sendable {
        case unchanged
        case changed
        /// The other ledger is of another range or seed: nothing was taken.
        case refused(String)
    }

    public let range: AddressRange
    public private(set) var seed: Seed?
    /// One claim per block once seeded; empty before.
    public private(set) var claims: [Claim]

    /// A ledger nobody has initialised yet.
    public init(range: AddressRange) {
        self.range = range
        seed = nil
        claims = []
    }

    public var isSeeded: Bool { seed != nil }

    /// Initialises the ledger: the blocks go to `members` in equal contiguous shares (sorted by
    /// name, the remainder to the first ones), version 1. Only the router the seed rule picks
    /// does this (`IPAMRules.seeder`).
    public mutating func initialise(seed: Seed, among members: [PeerName]) {
        precondition(self.seed == nil, "the ledger is already seeded")
        precondition(!members.isEmpty, "a ledger needs an owner")
        let owners = members.sorted()
        let share = range.blockCount / owners.count, extra = range.blockCount % owners.count
        claims.reserveCapacity(range.blockCount)
        for (i, owner) in owners.enumerated() {
            let count = share + (i < extra ? 1 : 0)
            claims.append(contentsOf: repeatElement(Claim(owner: owner, version: 1), count: count))
        }
        self.seed = seed
    }

    public func owner(ofBlock block: Int) -> PeerName? { isSeeded ? claims[block].owner : nil }

    public func owner(of address: IPAddress) -> PeerName? {
        range.offset(of: address).flatMap { owner(ofBlock: range.block(of: $0)) }
    }

    public func blocks(ownedBy name: PeerName) -> [Int] {
        claims.indices.filter { claims[$0].owner == name }
    }

    /// Blocks per owner.
    public var shares: [PeerName: Int] {
        var shares: [PeerName: Int] = [:]
        for claim in claims { shares[claim.owner, default: 0] += 1 }
        return shares
    }

    /// Hands `blocks` (all owned by `from`) to `to`. Only `from` itself calls this.
    public mutating func donate(_ blocks: [Int], from: PeerName, to: PeerName) {
        for block in blocks {
            precondition(claims[block].owner == from, "only a block's owner gives it away")
            claims[block] = Claim(owner: to, version: claims[block].version &+ 1)
        }
    }

    /// Gives every block of `departed` to `to` (`weft rmpeer`); returns how many.
    @discardableResult
    public mutating func reclaim(from departed: PeerName, to: PeerName) -> Int {
        var count = 0
        for i in claims.indices where claims[i].owner == departed {
            claims[i] = Claim(owner: to, version: claims[i].version &+ 1)
            count += 1
        }
        return count
    }

    /// Takes from `other` every claim that beats ours. Idempotent, commutative and associative
    /// (a per-block maximum), so any order of gossip gives every router the same ledger.
    public mutating func merge(_ other: BlockLedger) -> MergeResult {
        guard other.range == range else {
            return .refused("its range is \(other.range), ours \(range)")
        }
        guard let theirs = other.seed else { return .unchanged }
        guard let ours = seed else {
            self = other
            return .changed
        }
        guard ours == theirs else {
            return .refused("its pool was started by \(theirs.by), ours by \(ours.by)")
        }
        var changed = false
        for i in claims.indices where other.claims[i].beats(claims[i]) {
            claims[i] = other.claims[i]
            changed = true
        }
        return changed ? .changed : .unchanged
    }
}

extension BlockLedger: CustomStringConvertible {
    /// The runs, short enough for a log line or a test failure.
    public var description: String {
        guard let seed else { return "\(range) unseeded" }
        return "\(range) seed \(seed): " + runs.map { "\($0.start)+\($0.count) \($0.claim.owner) v\($0.claim.version)" }.joined(separator: ", ")
    }
}

// MARK: - Wire form (docs/protocol.md §7.1)

extension BlockLedger {
    /// Runs of blocks with the same claim: a ledger split among N routers has about N runs.
    public var runs: [(start: Int, count: Int, claim: Claim)] {
        var runs: [(start: Int, count: Int, claim: Claim)] = []
        for (i, claim) in claims.enumerated() {
            if let last = runs.last, last.claim == claim { runs[runs.count - 1].count += 1 } else { runs.append((i, 1, claim)) }
        }
        return runs
    }

    public func encode(into w: inout ByteWriter) {
        range.encode(into: &w)
        guard let seed else { return w.u8(0) }
        w.u8(1)
        w.peerName(seed.by)
        w.u64(seed.nonce)
        let runs = self.runs
        w.u16(UInt16(runs.count))
        for run in runs {
            w.u16(UInt16(run.start))
            w.u16(UInt16(run.count))
            w.peerName(run.claim.owner)
            w.u32(run.claim.version)
        }
    }

    /// Reads a ledger; the runs must cover every block once, in order.
    public static func decode(from r: inout ByteReader) throws -> BlockLedger {
        let range = try AddressRange.decode(from: &r)
        switch try r.u8("ledger seeded") {
        case 0: return BlockLedger(range: range)
        case 1: break
        case let other: throw WireError.invalid(what: "ledger seeded flag \(other)")
        }
        let seed = Seed(by: try r.peerName("ledger seed"), nonce: try r.u64("ledger seed nonce"))
        let count = try r.count16("ledger runs", limit: range.blockCount, minEntrySize: 14)
        var runs: [(start: Int, count: Int, claim: Claim)] = []
        for _ in 0..<count {
            let start = Int(try r.u16("run start")), length = Int(try r.u16("run length"))
            runs.append((start, length, Claim(owner: try r.peerName("run owner"), version: try r.u32("run version"))))
        }
        return try BlockLedger(range: range, seed: seed, runs: runs)
    }

    /// A seeded ledger from its runs, which must cover every block once, in order.
    public init(range: AddressRange, seed: Seed, runs: [(start: Int, count: Int, claim: Claim)]) throws {
        self.init(range: range)
        claims.reserveCapacity(range.blockCount)
        for run in runs {
            guard run.start == claims.count, run.count > 0, run.start + run.count <= range.blockCount else {
                throw WireError.invalid(what: "ledger run \(run.start)+\(run.count) (runs must cover the \(range.blockCount) blocks in order)")
            }
            claims.append(contentsOf: repeatElement(run.claim, count: run.count))
        }
        guard claims.count == range.blockCount else {
            throw WireError.invalid(what: "ledger runs cover \(claims.count) of \(range.blockCount) blocks")
        }
        self.seed = seed
    }
}
