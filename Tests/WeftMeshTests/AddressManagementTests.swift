// The pure core of address management (docs/protocol.md §7): the range and its blocks, the
// ownership ledger's merge, allocation, and random schedules of partitions and heals that must
// never give one address to two workloads.
import WeftTestSupport
import WeftWire
import XCTest
@testable import WeftMesh

final class AddressManagementTests: XCTestCase {
    func testRangeBlocksAndAddresses() throws {
        let range = try AddressRange("10.32.0.0/12")
        XCTAssertEqual(range.blockCount, 4096)
        XCTAssertEqual(range.addressesPerBlock, 256)
        XCTAssertEqual(range.address(at: 1).description, "10.32.0.1")
        XCTAssertEqual(range.address(at: 0x1_0203).description, "10.33.2.3")
        XCTAssertEqual(range.offset(of: IPAddress("10.47.255.254")!), (1 << 20) - 2)
        XCTAssertNil(range.offset(of: IPAddress("10.48.0.1")!))
        XCTAssertNil(range.offset(of: IPAddress("10.31.255.255")!))
        XCTAssertNil(range.offset(of: IPAddress("fd00::1")!))
        XCTAssertTrue(range.isReserved(0) && range.isReserved(range.lastOffset) && !range.isReserved(1))
        XCTAssertEqual(range.description, "10.32.0.0/12")

        let small = try AddressRange("192.168.7.0/24")
        XCTAssertEqual(small.blockCount, 64)
        XCTAssertEqual(small.addressesPerBlock, 4)

        let v6 = try AddressRange("fd32::/104")
        XCTAssertEqual(v6.blockCount, 4096)
        XCTAssertEqual(v6.address(at: 0xAB_CDEF).description, "fd32::ab:cdef")
        XCTAssertEqual(v6.offset(of: IPAddress("fd32::ab:cdef")!), 0xAB_CDEF)
        XCTAssertNil(v6.offset(of: IPAddress("fd32::1:0:0")!))
        let wide = try AddressRange("fd00:1:2:3::/64")
        XCTAssertEqual(wide.lastOffset, .max)
        XCTAssertEqual(wide.address(at: .max).description, "fd00:1:2:3:ffff:ffff:ffff:ffff")
        XCTAssertEqual(wide.offset(of: IPAddress("fd00:1:2:3:ffff:ffff:ffff:fffe")!), .max - 1)

        XCTAssertThrowsError(try AddressRange("10.32.0.1/12")) { error in
            XCTAssertEqual("\(error)", "'10.32.0.1/12' has host bits set: did you mean 10.32.0.0/12?")
        }
        XCTAssertThrowsError(try AddressRange("10.0.0.0/30")) { XCTAssertTrue("\($0)".contains("/29")) }
        XCTAssertThrowsError(try AddressRange("fd00::/48")) { XCTAssertTrue("\($0)".contains("/64")) }
        XCTAssertThrowsError(try AddressRange("10.0.0.0")) { XCTAssertTrue("\($0)".contains("like 10.32.0.0/12")) }
    }

    func testSeededLedgerSplitsEvenlyAndRoundTrips() throws {
        let range = try AddressRange("10.32.0.0/12")
        let a = PeerName(value: 3), b = PeerName(value: 1), c = PeerName(value: 2)
        var ledger = BlockLedger(range: range)
        XCTAssertNil(ledger.owner(of: IPAddress("10.32.0.1")!))
        ledger.initialise(seed: .init(by: b, nonce: 7), among: [a, b, c])
        XCTAssertEqual(ledger.shares, [b: 1366, c: 1365, a: 1365])
        XCTAssertEqual(ledger.owner(of: IPAddress("10.32.0.1")!), b)
        XCTAssertEqual(ledger.owner(of: IPAddress("10.47.255.1")!), a)
        XCTAssertEqual(ledger.runs.count, 3)
        ledger.donate([4000, 4001], from: a, to: b)
        XCTAssertEqual(ledger.runs.count, 5, "a's run is cut in two around the gift")

        var w = ByteWriter()
        ledger.encode(into: &w)
        var r = ByteReader(w.bytes)
        XCTAssertEqual(try BlockLedger.decode(from: &r), ledger)
        XCTAssertTrue(r.isAtEnd)
        // Unseeded, IPv6.
        var w6 = ByteWriter()
        BlockLedger(range: try AddressRange("fd32::/104")).encode(into: &w6)
        var r6 = ByteReader(w6.bytes)
        XCTAssertEqual(try BlockLedger.decode(from: &r6), BlockLedger(range: try AddressRange("fd32::/104")))

        // Every truncation is an error, and runs that leave a gap or overlap are refused.
        for cut in 0..<w.bytes.count {
            var short = ByteReader(Array(w.bytes[..<cut]))
            XCTAssertThrowsError(try BlockLedger.decode(from: &short), "cut at \(cut)")
        }
        let firstRun = 1 + 1 + 4 + 1 + 6 + 8 + 2
        for (field, value) in [(0, UInt8(1)), (3, UInt8(0))] {   // start 1 (a gap), length 0
            var bad = w.bytes
            bad[firstRun + field] = value
            var br = ByteReader(bad)
            XCTAssertThrowsError(try BlockLedger.decode(from: &br)) { XCTAssertTrue("\($0)".contains("ledger run"), "\($0)") }
        }
        var hostBits = w.bytes
        hostBits[5] = 1   // 10.32.0.1/12
        var hr = ByteReader(hostBits)
        XCTAssertThrowsError(try BlockLedger.decode(from: &hr))
    }

    func testLedgersOfAnotherSeedOrRangeAreNeverMerged() throws {
        let range = try AddressRange("10.32.0.0/12")
        let a = PeerName(value: 1), b = PeerName(value: 2)
        var mine = BlockLedger(range: range), theirs = BlockLedger(range: range)
        mine.initialise(seed: .init(by: a, nonce: 1), among: [a])
        theirs.initialise(seed: .init(by: b, nonce: 2), among: [b])
        let before = mine
        guard case .refused(let why) = mine.merge(theirs) else { return XCTFail("merged two pools") }
        XCTAssertTrue(why.contains("started by \(b)"), why)
        XCTAssertEqual(mine, before)
        guard case .refused(let range2) = mine.merge(BlockLedger(range: try AddressRange("10.64.0.0/12"))) else { return XCTFail() }
        XCTAssertTrue(range2.contains("10.64.0.0/12"), range2)
        var empty = BlockLedger(range: range)
        XCTAssertEqual(empty.merge(mine), .changed)
        XCTAssertEqual(empty, mine)
        XCTAssertEqual(mine.merge(BlockLedger(range: range)), .unchanged)
    }

    /// Random histories of one pool on many replicas (donations by owners, one reclaim per
    /// departed router, even concurrent ones): merge is idempotent, commutative and associative,
    /// and every replica ends equal whatever order the gossip took.
    func testLedgerMergeIsOrderIndependent() throws {
        let range = try AddressRange("10.32.0.0/22")   // 1024 addresses, 256 blocks of 4
        for seedValue in UInt64(1)...40 {
            var g = SplitMix64(seed: seedValue)
            let names = (1...6).map { PeerName(value: UInt64($0) * 0x1001) }
            var seeded = BlockLedger(range: range)
            seeded.initialise(seed: .init(by: names[0], nonce: seedValue), among: Array(names.prefix(3)))
            var replicas = Array(repeating: seeded, count: names.count)
            var history: [BlockLedger] = [seeded]
            for _ in 0..<60 {
                let i = Int.random(in: 0..<names.count, using: &g)
                switch Int.random(in: 0..<4, using: &g) {
                case 0, 1:
                    let owned = replicas[i].blocks(ownedBy: names[i])
                    guard !owned.isEmpty else { continue }
                    let give = Array(owned.shuffled(using: &g).prefix(Int.random(in: 1...owned.count, using: &g)))
                    replicas[i].donate(give, from: names[i], to: names.randomElement(using: &g)!)
                case 2:
                    replicas[i].reclaim(from: names.randomElement(using: &g)!, to: names[i])
                default:
                    _ = replicas[i].merge(replicas.randomElement(using: &g)!)
                }
                history.append(replicas[i])
            }
            for _ in 0..<30 {
                let x = history.randomElement(using: &g)!, y = history.randomElement(using: &g)!, z = history.randomElement(using: &g)!
                var xy = x; _ = xy.merge(y)
                var yx = y; _ = yx.merge(x)
                XCTAssertEqual(xy, yx, "commutative (seed \(seedValue))")
                var again = xy
                XCTAssertEqual(again.merge(y), .unchanged, "idempotent")
                XCTAssertEqual(again, xy)
                var left = xy; _ = left.merge(z)
                var yz = y; _ = yz.merge(z)
                var right = x; _ = right.merge(yz)
                XCTAssertEqual(left, right, "associative (seed \(seedValue))")
            }
            // Gossip between all pairs in a random order until nothing changes: one ledger everywhere.
            var changed = true
            while changed {
                changed = false
                for i in replicas.indices.shuffled(using: &g) {
                    for j in replicas.indices.shuffled(using: &g) where replicas[i].merge(replicas[j]) == .changed { changed = true }
                }
            }
            XCTAssertTrue(replicas.allSatisfy { $0 == replicas[0] }, "seed \(seedValue)")
        }
    }

    /// Routers allocate, release, ask peers of their side for space, are stopped and reclaimed
    /// (`rmpeer`, once per stopped router) while the mesh is cut into random partitions and
    /// healed: no address is ever held by two workloads, and every holding lies in a block its
    /// router owns once the gossip has settled.
    func testNoAddressIsEverHeldTwiceAcrossPartitions() throws {
        let range = try AddressRange("10.40.0.0/26")   // 16 blocks of 4: space runs out often
        var allocations = 0, donations = 0, starved = 0, pools = 0
        for seedValue in UInt64(1)...100 {
            var g = SplitMix64(seed: seedValue)
            let count = 6
            let names = (0..<count).map { PeerName(value: UInt64($0 + 1) * 0x10101) }
            var ledgers = Array(repeating: BlockLedger(range: range), count: count)
            var held = Array(repeating: AddressAllocations(range: range), count: count)
            var alive = Array(repeating: true, count: count)
            var reclaimed = Array(repeating: false, count: count)
            var group = Array(repeating: 0, count: count)   // routers talk only within a group
            var consensus = names.map { SeedConsensus(local: $0, consensusSize: count) }
            var nextHolder = 0
            var seededBy: Set<BlockLedger.Seed> = []
            func peers(of i: Int) -> [Int] { (0..<count).filter { $0 != i && alive[$0] && group[$0] == group[i] } }

            for step in 0..<400 {
                let i = Int.random(in: 0..<count, using: &g)
                guard alive[i] else { continue }
                switch Int.random(in: 0..<100, using: &g) {
                case 0..<6:   // a new partition
                    for k in 0..<count { group[k] = Int.random(in: 0..<3, using: &g) }
                case 6..<18:   // heal
                    for k in 0..<count { group[k] = 0 }
                case 18..<50:   // a gossip round: each router hears a peer of its side (ledger, votes)
                    for k in 0..<count where alive[k] {
                        guard let j = peers(of: k).randomElement(using: &g) else { continue }
                        _ = ledgers[k].merge(ledgers[j])
                        for (name, vote) in consensus[j].votes { consensus[k].receive(vote, from: name) }
                        if !ledgers[k].isSeeded, let decided = consensus[k].seededLedger(range: range) {
                            _ = ledgers[k].merge(decided)
                        }
                        if let seed = ledgers[k].seed { seededBy.insert(seed) }
                    }
                case 50..<80:   // attach: allocate, or seed, or ask for space
                    let reachable = peers(of: i)
                    if !ledgers[i].isSeeded {
                        if let decided = consensus[i].seededLedger(range: range) {
                            _ = ledgers[i].merge(decided)
                            seededBy.insert(decided.seed!)
                        } else if reachable.count + 1 >= consensus[i].quorum, reachable.allSatisfy({ names[i] < names[$0] }),
                                  consensus[i].ownVote.promised?.proposer != names[i] {
                            // The smallest name of a side proposes (fewer duels); again only when
                            // it has promised a higher ballot of another.
                            consensus[i].propose(members: reachable.map { names[$0] })
                        }
                        continue
                    }
                    let owned = ledgers[i].blocks(ownedBy: names[i])
                    nextHolder += 1
                    if held[i].allocate(for: "w\(nextHolder)", owned: owned) != nil {
                        allocations += 1
                        continue
                    }
                    // None left: the donor rule picks a peer by what it announces; the donor
                    // decides from its own ledger and allocations.
                    let candidates = reachable.filter { ledgers[$0].isSeeded && ledgers[$0].seed == ledgers[i].seed }.map { j in
                        (name: names[j], freeBlocks: held[j].freeBlocks(owned: ledgers[j].blocks(ownedBy: names[j])).count)
                    }
                    guard let donor = IPAMRules.donor(candidates), let j = names.firstIndex(of: donor) else { starved += 1; continue }
                    let ownedByDonor = ledgers[j].blocks(ownedBy: donor)
                    let gift = IPAMRules.donation(free: held[j].freeBlocks(owned: ownedByDonor),
                                                  roomInUsedBlocks: held[j].freeCount(owned: ownedByDonor) > 0)
                    if !gift.isEmpty {
                        ledgers[j].donate(gift, from: donor, to: names[i])
                        donations += 1
                    }
                case 80..<90:   // detach
                    if let holder = held[i].byHolder.keys.sorted().randomElement(using: &g) { held[i].release(holder) }
                case 90..<93:   // a router stops for good (its workloads with it)
                    if alive.filter({ $0 }).count > 2 {
                        alive[i] = false
                        held[i] = AddressAllocations(range: range)
                    }
                default:   // rmpeer of a stopped router, on one router, once, after the mesh settled
                    let settled = (0..<count).allSatisfy { !alive[$0] || (group[$0] == group[i] && ledgers[$0] == ledgers[i]) }
                    if settled, let dead = (0..<count).first(where: { !alive[$0] && !reclaimed[$0] }), ledgers[i].isSeeded {
                        ledgers[i].reclaim(from: names[dead], to: names[i])
                        reclaimed[dead] = true
                    }
                }
                var seen: [UInt64: Int] = [:]
                for k in 0..<count where alive[k] {
                    for offset in held[k].byHolder.values {
                        if let other = seen.updateValue(k, forKey: offset) {
                            return XCTFail("seed \(seedValue) step \(step): \(range.address(at: offset)) held by routers \(other) and \(k)")
                        }
                    }
                }
            }
            // Heal and settle: one ledger, and every router's holdings in blocks it owns.
            var changed = true
            while changed {
                changed = false
                for a in 0..<count where alive[a] {
                    for b in 0..<count where alive[b] && ledgers[a].merge(ledgers[b]) == .changed { changed = true }
                }
            }
            let live = (0..<count).filter { alive[$0] }
            for k in live {
                XCTAssertEqual(ledgers[k], ledgers[live[0]], "seed \(seedValue)")
                for offset in held[k].byHolder.values {
                    XCTAssertEqual(ledgers[k].owner(ofBlock: range.block(of: offset)), names[k], "seed \(seedValue): \(range.address(at: offset))")
                }
            }
            XCTAssertLessThanOrEqual(seededBy.count, 1, "seed \(seedValue): the range was divided twice")
            if !seededBy.isEmpty { pools += 1 }
        }
        print("ipam schedules: \(pools) of 100 seeded, \(allocations) allocations, \(donations) donations, \(starved) attaches found no space on their side")
        XCTAssertGreaterThan(donations, 50, "the schedules should exercise donation")
        XCTAssertGreaterThan(pools, 50, "most schedules should seed a pool")
    }

    func testAllocationIsStableLowestFirstAndSkipsReservedAndTaken() throws {
        let range = try AddressRange("10.40.0.0/24")
        var held = AddressAllocations(range: range)
        XCTAssertEqual(held.allocate(for: "a", owned: [0, 1]), 1, "offset 0 is the network address")
        XCTAssertEqual(held.allocate(for: "a", owned: [0, 1]), 1, "the same holder keeps its address")
        XCTAssertEqual(held.allocate(for: "b", owned: [0, 1], takenElsewhere: { $0 == 2 }), 3)
        XCTAssertEqual(held.take(5, for: "c"), nil)
        XCTAssertEqual(held.take(5, for: "d"), "c", "a hand-given address already held names its holder")
        XCTAssertEqual(held.allocate(for: "e", owned: [0, 1]), 2)
        XCTAssertEqual(held.allocate(for: "f", owned: [0, 1]), 4)
        XCTAssertEqual(held.allocate(for: "g", owned: [0, 1]), 6)
        XCTAssertEqual(held.allocate(for: "h", owned: [0, 1]), 7)
        XCTAssertNil(held.allocate(for: "i", owned: [0, 1]), "blocks 0 and 1 are full")
        XCTAssertEqual(held.freeCount(owned: [0, 1, 63]), 3, "block 63 has 3: its last address is the broadcast")
        XCTAssertEqual(held.release("e"), 2)
        XCTAssertEqual(held.allocate(for: "i", owned: [0, 1]), 2)
        XCTAssertEqual(held.freeBlocks(owned: [0, 1, 2]), [2])
        XCTAssertEqual(try AddressAllocations(range: AddressRange("fd00::/64")).freeCount(owned: Array(0..<4096)), .max - 1, "2^64 less the two reserved")
    }

    func testDonorAndDonationRules() {
        let a = PeerName(value: 1), b = PeerName(value: 2), c = PeerName(value: 3)
        XCTAssertEqual(IPAMRules.donation(free: [9, 3, 4, 8], roomInUsedBlocks: false), [8, 9])
        XCTAssertEqual(IPAMRules.donation(free: [3], roomInUsedBlocks: false), [])
        XCTAssertEqual(IPAMRules.donation(free: [3], roomInUsedBlocks: true), [3])
        XCTAssertEqual(IPAMRules.donor([(a, 2), (b, 5), (c, 5)]), b)
        XCTAssertNil(IPAMRules.donor([(a, 0)]))
    }

    /// Seeding consensus: a router alone (consensus size 1) decides at once; with size 3 one
    /// router cannot, two can; duelling proposers still end on one decision everywhere.
    func testSeedConsensusDecidesOnceWithAMajority() throws {
        let range = try AddressRange("10.32.0.0/12")
        let a = PeerName(value: 1), b = PeerName(value: 2), c = PeerName(value: 3)
        var alone = SeedConsensus(local: a, consensusSize: 1)
        alone.propose(members: [])
        XCTAssertEqual(alone.seededLedger(range: range)?.shares, [a: 4096])

        var x = SeedConsensus(local: a, consensusSize: 3), y = SeedConsensus(local: b, consensusSize: 3), z = SeedConsensus(local: c, consensusSize: 3)
        x.propose(members: [b])
        XCTAssertNil(x.decision, "one of three is no majority")
        y.receive(x.ownVote, from: a)   // y promises
        x.receive(y.ownVote, from: b)   // x has two promises: accepts its own proposal
        XCTAssertNil(x.decision)
        y.receive(x.ownVote, from: a)   // y accepts: a majority accepted, y learns
        XCTAssertNotNil(y.decision)
        x.receive(y.ownVote, from: b)
        XCTAssertEqual(x.decision?.members, [a, b])
        // A late proposer with a higher ballot gets the decided value, never its own.
        z.propose(members: [c])
        for _ in 0..<3 {
            for (name, vote) in z.votes { x.receive(vote, from: name); y.receive(vote, from: name) }
            for (name, vote) in x.votes { z.receive(vote, from: name) }
            for (name, vote) in y.votes { z.receive(vote, from: name) }
        }
        XCTAssertEqual(z.decision?.members, [a, b])
        XCTAssertEqual(z.seededLedger(range: range), x.seededLedger(range: range))

        // Random duels: five routers, consensus size 5, all proposing, votes gossiped at random
        // (including stale ones): whoever decides, decides the same.
        for seedValue in UInt64(1)...200 {
            var g = SplitMix64(seed: seedValue)
            let names = (1...5).map { PeerName(value: UInt64($0)) }
            var nodes = names.map { SeedConsensus(local: $0, consensusSize: 5) }
            var history: [(PeerName, SeedVote)] = []
            for _ in 0..<120 {
                let i = Int.random(in: 0..<5, using: &g)
                if Int.random(in: 0..<6, using: &g) == 0 {
                    nodes[i].propose(members: Array(names.shuffled(using: &g).prefix(Int.random(in: 0...4, using: &g))))
                } else if let (name, vote) = history.randomElement(using: &g) {
                    nodes[i].receive(vote, from: name)
                }
                history.append((names[i], nodes[i].ownVote))
            }
            let decided = Set(nodes.compactMap { $0.decision.map { "\($0.origin.round)/\($0.origin.proposer) \($0.members)" } })
            XCTAssertLessThanOrEqual(decided.count, 1, "seed \(seedValue): \(decided)")
        }
    }
}
