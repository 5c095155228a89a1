// The address-management gossip message (IPAM_UPDATE, docs/protocol.md §7.5) and the state a
// router keeps in its data dir (§7.6).
import WeftWire

extension AddressManager.Update {
    /// Bounds checked before anything is allocated: routers, members of a proposal and
    /// holdings per router.
    public static let maxEntries = 4096

    /// The range first: an update of another pool's range is set aside whole (its votes and
    /// announcements are another pool's).
    public func encode(range: AddressRange) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        range.encode(into: &w)
        w.u8(ledger == nil ? 0 : 1)
        ledger?.encode(into: &w)
        w.u16(UInt16(votes.count))
        for (name, vote) in votes {
            w.peerName(name)
            vote.encode(into: &w)
        }
        w.u16(UInt16(announcements.count))
        for (name, a) in announcements {
            w.peerName(name)
            w.u64(a.version)
            w.u32(a.freeBlocks)
            w.u16(UInt16(a.holdings.count))
            for h in a.holdings {
                w.u64(h.offset)
                w.str8(h.holder)
            }
            w.u16(UInt16(a.outside.count))
            for h in a.outside {
                w.append(h.address.bytes)
                w.str8(h.holder)
            }
        }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> AddressManager.Update {
        var r = ByteReader(bytes)
        var update = AddressManager.Update(ledger: nil, votes: [], announcements: [])
        update.range = try AddressRange.decode(from: &r)
        switch try r.u8("ipam ledger flag") {
        case 0: break
        case 1: update.ledger = try BlockLedger.decode(from: &r)
        case let other: throw WireError.invalid(what: "ipam ledger flag \(other)")
        }
        for _ in 0..<(try r.count16("ipam votes", limit: maxEntries, minEntrySize: 7)) {
            update.votes.append((try r.peerName("vote name"), try SeedVote.decode(from: &r)))
        }
        for _ in 0..<(try r.count16("ipam announcements", limit: maxEntries, minEntrySize: 20)) {
            let name = try r.peerName("announcement name")
            let version = try r.u64("announcement version"), free = try r.u32("announcement free blocks")
            var holdings: [AddressManager.Holding] = []
            for _ in 0..<(try r.count16("announcement holdings", limit: maxEntries, minEntrySize: 9)) {
                holdings.append(.init(offset: try r.u64("holding offset"), holder: try r.str8("holding holder")))
            }
            var outside: [AddressManager.OutsideHolding] = []
            for _ in 0..<(try r.count16("announcement outside", limit: maxEntries, minEntrySize: 17)) {
                outside.append(.init(address: IPAddress(bytes: try r.bytes(16, "outside address"))!, holder: try r.str8("outside holder")))
            }
            update.announcements.append((name, .init(version: version, freeBlocks: free, holdings: holdings, outside: outside)))
        }
        guard r.isAtEnd else { throw WireError.invalid(what: "ipam update: \(r.remaining) bytes after the end") }
        return update
    }
}

extension SeedVote {
    func encode(into w: inout ByteWriter) {
        w.u8((promised == nil ? 0 : 1) | (accepted == nil ? 0 : 2))
        for ballot in [promised, accepted, accepted == nil ? nil : origin].compactMap({ $0 }) {
            w.u32(ballot.round)
            w.peerName(ballot.proposer)
        }
        w.u16(UInt16(members.count))
        for name in members { w.peerName(name) }
    }

    static func decode(from r: inout ByteReader) throws -> SeedVote {
        let flags = try r.u8("vote flags")
        guard flags & ~3 == 0 else { throw WireError.invalid(what: "vote flags \(flags)") }
        func ballot() throws -> SeedBallot { SeedBallot(round: try r.u32("ballot round"), proposer: try r.peerName("ballot proposer")) }
        let promised = flags & 1 != 0 ? try ballot() : nil
        let accepted = flags & 2 != 0 ? try ballot() : nil
        let origin = flags & 2 != 0 ? try ballot() : nil
        var members: [PeerName] = []
        for _ in 0..<(try r.count16("vote members", limit: AddressManager.Update.maxEntries, minEntrySize: 6)) {
            members.append(try r.peerName("vote member"))
        }
        if let accepted, let promised, accepted > promised { throw WireError.invalid(what: "vote accepted above its promise") }
        if let accepted, let origin, origin > accepted { throw WireError.invalid(what: "vote value from a later ballot than it was accepted at") }
        if (accepted == nil) != members.isEmpty { throw WireError.invalid(what: "vote members without an accepted ballot") }
        return SeedVote(promised: promised, accepted: accepted, origin: origin, members: members)
    }
}

// MARK: - The data-dir file (docs/protocol.md §7.6)

extension AddressManager {
    /// What survives a restart: the ledger, this router's vote (an acceptor that forgot its
    /// promise could let two ballots win), its allocations and its announcement version (peers
    /// ignore announcements older than the last they saw). JSON for the operator's eyes.
    public struct Saved: Codable, Equatable, Sendable {
        public struct Run: Codable, Equatable, Sendable {
            public var start: Int, count: Int, owner: String, version: UInt32
        }
        public struct Ballot: Codable, Equatable, Sendable {
            public var round: UInt32, proposer: String
        }
        public var range: String
        public var seedBy: String?
        public var seedNonce: UInt64?
        public var runs: [Run]
        public var promised: Ballot?
        public var accepted: Ballot?
        public var origin: Ballot?
        public var members: [String]
        /// Holder → address, in the range and (`outside`) given by hand outside it.
        public var addresses: [String: String]
        public var outside: [String: String]
        public var announcementVersion: UInt64
    }

    public var saved: Saved {
        func ballot(_ b: SeedBallot?) -> Saved.Ballot? { b.map { .init(round: $0.round, proposer: "\($0.proposer)") } }
        let vote = consensus.ownVote
        return Saved(range: "\(range)", seedBy: ledger.seed.map { "\($0.by)" }, seedNonce: ledger.seed?.nonce,
                     runs: ledger.runs.map { .init(start: $0.start, count: $0.count, owner: "\($0.claim.owner)", version: $0.claim.version) },
                     promised: ballot(vote.promised), accepted: ballot(vote.accepted), origin: ballot(vote.origin), members: vote.members.map { "\($0)" },
                     addresses: allocations.byHolder.mapValues { "\(range.address(at: $0))" },
                     outside: outside.mapValues { "\($0)" },
                     announcementVersion: announcements[local]!.version)
    }

    public struct SavedStateError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The manager a saved state describes, checked as strictly as gossip (the ledger goes
    /// through the wire decoder's rules); `range` is the one the router was launched with.
    public init(restoring saved: Saved, local: PeerName, range: AddressRange, consensusSize: Int) throws {
        func fail(_ what: String) -> SavedStateError { SavedStateError(description: what) }
        guard let savedRange = try? AddressRange(saved.range) else { throw fail("its range '\(saved.range)' is not a range") }
        guard savedRange == range else {
            throw fail("it holds addresses of \(savedRange), but the router was launched with --ipalloc-range \(range): launch with --ipalloc-range \(savedRange), or move the file away to start a new pool (its addresses are then forgotten)")
        }
        self.init(local: local, range: range, consensusSize: consensusSize)
        func name(_ text: String) throws -> PeerName {
            guard let name = PeerName(text) else { throw fail("'\(text)' is not a peer name") }
            return name
        }
        // The ledger, by the wire form's rules.
        if let by = saved.seedBy, let nonce = saved.seedNonce {
            let runs = try saved.runs.map { (start: $0.start, count: $0.count, claim: BlockLedger.Claim(owner: try name($0.owner), version: $0.version)) }
            do { ledger = try BlockLedger(range: range, seed: .init(by: try name(by), nonce: nonce), runs: runs) } catch {
                throw fail("its ledger is damaged (\(error))")
            }
        } else if !saved.runs.isEmpty {
            throw fail("it has blocks but no seed")
        }
        // The vote.
        func ballot(_ b: Saved.Ballot?) throws -> SeedBallot? { try b.map { SeedBallot(round: $0.round, proposer: try name($0.proposer)) } }
        let vote = SeedVote(promised: try ballot(saved.promised), accepted: try ballot(saved.accepted), origin: try ballot(saved.origin),
                            members: try saved.members.map(name))
        guard (vote.accepted == nil) == (vote.origin == nil) else { throw fail("its vote is damaged (an accepted ballot needs its origin)") }
        var vw = ByteWriter()
        vote.encode(into: &vw)
        var vr = ByteReader(vw.bytes)
        do { _ = try SeedVote.decode(from: &vr) } catch { throw fail("its vote is damaged (\(error))") }
        consensus.restore(ownVote: vote)
        if !ledger.isSeeded, let decided = consensus.seededLedger(range: range) { _ = ledger.merge(decided) }
        // The allocations: in the range, one holder each.
        for (holder, text) in saved.addresses.sorted(by: { $0.key < $1.key }) {
            guard let address = IPAddress(text), let offset = range.offset(of: address), !range.isReserved(offset) else {
                throw fail("the address \(text) of '\(holder)' is not a usable address of \(range)")
            }
            if let other = allocations.take(offset, for: holder) { throw fail("\(text) is listed for both '\(other)' and '\(holder)'") }
        }
        for (holder, text) in saved.outside {
            guard let address = IPAddress(text), range.offset(of: address) == nil else {
                throw fail("the address \(text) of '\(holder)' is listed as outside \(range) but is not")
            }
            outside[holder] = address
        }
        announcements[local] = currentAnnouncement(version: saved.announcementVersion)
    }
}
