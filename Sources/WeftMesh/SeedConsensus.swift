// Agreeing on how the allocation range is first divided, once per mesh (docs/protocol.md
// §7.2): single-decree Paxos over gossiped votes. Each router gossips its own vote (the ballot it
// promised, the proposal it accepted); every router reads the votes it has heard and acts as
// acceptor, as proposer for its own ballot, and as learner. A majority of the configured
// consensus size must take part, so two halves of a starting mesh never divide the range twice.
import WeftWire

public struct SeedBallot: Comparable, Hashable, Sendable {
    public let round: UInt32
    public let proposer: PeerName
    public init(round: UInt32, proposer: PeerName) { self.round = round; self.proposer = proposer }
    public static func < (a: SeedBallot, b: SeedBallot) -> Bool {
        a.round != b.round ? a.round < b.round : a.proposer < b.proposer
    }
}

/// One router's vote: what it promised and what it accepted. Both only grow.
public struct SeedVote: Equatable, Sendable {
    public var promised: SeedBallot?
    /// The ballot and the value it accepted: the routers that share the range at first, and
    /// the ballot that first proposed that value (a later ballot carries an earlier value on,
    /// and the value's origin, not the deciding ballot, names the pool's seed).
    public var accepted: SeedBallot?
    public var origin: SeedBallot?
    public var members: [PeerName]

    public init(promised: SeedBallot? = nil, accepted: SeedBallot? = nil, origin: SeedBallot? = nil, members: [PeerName] = []) {
        self.promised = promised
        self.accepted = accepted
        self.origin = origin
        self.members = members
    }

    /// Whether `self` is a later state of the same router's vote than `other` (a router's
    /// promise and acceptance only grow; rounds start at 1, so 0 stands for none).
    func isNewer(than other: SeedVote) -> Bool {
        func key(_ v: SeedVote) -> (UInt32, UInt64, UInt32, UInt64) {
            (v.promised?.round ?? 0, v.promised?.proposer.value ?? 0, v.accepted?.round ?? 0, v.accepted?.proposer.value ?? 0)
        }
        return key(self) > key(other)
    }
}

public struct SeedConsensus: Sendable {
    public let local: PeerName
    /// How many routers divide the range at first (`--ipalloc-init consensus=N`).
    public let size: Int
    /// Votes that decide: a majority of the consensus size.
    public let quorum: Int
    /// Every vote heard, this router's own included.
    public private(set) var votes: [PeerName: SeedVote]
    /// The agreed value (its origin ballot and members), once a quorum accepted one ballot.
    public private(set) var decision: (ballot: SeedBallot, origin: SeedBallot, members: [PeerName])?
    /// What this router proposes when its own ballot gathers promises without an earlier value.
    private var proposal: [PeerName] = []

    public static func quorum(consensusSize: Int) -> Int { consensusSize / 2 + 1 }

    public init(local: PeerName, consensusSize: Int) {
        self.local = local
        size = max(1, consensusSize)
        quorum = Self.quorum(consensusSize: size)
        votes = [local: SeedVote()]
    }

    public var ownVote: SeedVote { votes[local]! }

    /// The highest ballot anybody promised.
    public var highestPromised: SeedBallot? { votes.values.compactMap(\.promised).max() }

    /// Puts back the vote this router saved before a restart (its promise must hold).
    mutating func restore(ownVote vote: SeedVote) { votes[local] = vote }

    /// Starts a ballot above every one seen, proposing `members` (this router included).
    public mutating func propose(members: [PeerName]) {
        let highest = votes.values.compactMap { $0.promised?.round }.max() ?? 0
        let ballot = SeedBallot(round: highest &+ 1, proposer: local)
        proposal = Array(Set(members + [local])).sorted()
        votes[local]!.promised = ballot
        settle()
    }

    /// Takes a router's gossiped vote; returns true when this router's own vote or the decision
    /// changed (then its vote is gossiped again).
    @discardableResult
    public mutating func receive(_ vote: SeedVote, from name: PeerName) -> Bool {
        guard name != local else { return false }
        if let known = votes[name], !vote.isNewer(than: known) { return false }
        votes[name] = vote
        return settle()
    }

    /// Acceptor, proposer and learner steps until nothing moves.
    @discardableResult
    private mutating func settle() -> Bool {
        let before = (ownVote, decision?.ballot)
        var mine = ownVote
        // Acceptor: promise the highest ballot anybody prepared; accept a proposal at or above it.
        if let highest = votes.values.compactMap(\.promised).max(), mine.promised.map({ highest > $0 }) ?? true {
            mine.promised = highest
        }
        if let best = votes.values.filter({ $0.accepted != nil }).max(by: { $0.accepted! < $1.accepted! }),
           let ballot = best.accepted, mine.promised.map({ ballot >= $0 }) ?? true, mine.accepted.map({ ballot > $0 }) ?? true {
            mine.accepted = ballot
            mine.origin = best.origin
            mine.members = best.members
        }
        votes[local] = mine
        // Proposer: a quorum promised our ballot: propose the value accepted at the highest
        // ballot among them, else ours.
        if let ballot = mine.promised, ballot.proposer == local, mine.accepted != ballot, !proposal.isEmpty {
            let promisers = votes.values.filter { $0.promised == ballot }
            if promisers.count >= quorum {
                let earlier = promisers.filter { $0.accepted != nil }.max { $0.accepted! < $1.accepted! }
                votes[local]!.accepted = ballot
                votes[local]!.origin = earlier?.origin ?? ballot
                votes[local]!.members = earlier?.members ?? proposal
            }
        }
        // Learner: a quorum accepted one ballot.
        if decision == nil {
            var count: [SeedBallot: Int] = [:]
            for vote in votes.values { if let a = vote.accepted { count[a, default: 0] += 1 } }
            if let (ballot, _) = count.first(where: { $0.value >= quorum }),
               let value = votes.values.first(where: { $0.accepted == ballot }), let origin = value.origin {
                decision = (ballot, origin, value.members)
            }
        }
        return before.0 != ownVote || before.1 != decision?.ballot
    }

    /// The ledger the decision gives (identical on every router that learns it).
    public func seededLedger(range: AddressRange) -> BlockLedger? {
        guard let decision else { return nil }
        var ledger = BlockLedger(range: range)
        ledger.initialise(seed: .init(by: decision.origin.proposer, nonce: UInt64(decision.origin.round)), among: decision.members)
        return ledger
    }
}
