// AddressManager as routers use it: updates passed between managers in memory (a flood with
// change suppression, as the router does), seeding, donation, hand-given addresses, the
// gossip message and the data-dir state.
import WeftTestSupport
import WeftWire
import XCTest
@testable import WeftMesh

final class AddressManagerTests: XCTestCase {
    /// Managers linked all to all; `deliver` floods an update as the router does: each
    /// receiver passes on what changed for it, through the wire codec.
    private struct Mesh {
        var managers: [AddressManager]
        var names: [PeerName] { managers.map(\.local) }
        var messages = 0

        init(count: Int, range: String = "10.32.0.0/12", consensusSize: Int) throws {
            let range = try AddressRange(range)
            managers = (1...count).map { AddressManager(local: PeerName(value: UInt64($0) << 8), range: range, consensusSize: consensusSize) }
        }

        mutating func deliver(_ update: AddressManager.Update?, from sender: Int, to: [Int]? = nil) throws {
            guard let update, !update.isEmpty else { return }
            var queue = [(update, sender)]
            while let (message, from) = queue.first {
                queue.removeFirst()
                let bytes = message.encode(range: managers[from].range)
                for i in to ?? Array(managers.indices) where i != from {
                    messages += 1
                    let changed = managers[i].receive(try .decode(bytes), from: managers[from].local)
                    if !changed.isEmpty { queue.append((changed, i)) }
                }
            }
        }

        func others(_ i: Int) -> [PeerName] { names.enumerated().filter { $0.offset != i }.map(\.element) }
    }

    func testThreeRoutersSeedAllocateDistinctlyAndDonate() throws {
        var mesh = try Mesh(count: 3, range: "10.40.0.0/26", consensusSize: 3)   // 16 blocks of 4
        // Before the division: wait. Nothing is proposed without need until all 3 are there.
        XCTAssertEqual(mesh.managers[1].allocate(for: "a", reachable: mesh.others(1)).0, .waitingForSeed)
        XCTAssertNil(mesh.managers[0].proposeIfDue(reachable: [mesh.names[1]], needed: false))
        // Router 1 needs space and proposes; router 2 too, in the same tick: one of the ballots wins.
        let proposal1 = mesh.managers[1].proposeIfDue(reachable: mesh.others(1), needed: true)
        let proposal2 = mesh.managers[2].proposeIfDue(reachable: mesh.others(2), needed: true)
        try mesh.deliver(proposal1, from: 1)
        try mesh.deliver(proposal2, from: 2)
        XCTAssertNil(mesh.managers[2].proposeIfDue(reachable: mesh.others(2), needed: true), "a decided pool is not proposed again")
        XCTAssertTrue(mesh.managers.allSatisfy { $0.ledger.isSeeded }, "\(mesh.managers.map(\.ledger))")
        XCTAssertEqual(mesh.managers[0].ledger.shares, [mesh.names[0]: 6, mesh.names[1]: 5, mesh.names[2]: 5])

        // 40 workloads, round robin: all distinct; space runs out on some and donation follows.
        var addresses: [String: String] = [:], donations = 0
        for n in 0..<40 {
            let i = n < 30 ? 1 : n % 3   // router 1 runs out of its share
            var outcome: AddressManager.AllocationOutcome
            var tries = 0
            repeat {
                tries += 1
                let (result, update) = mesh.managers[i].allocate(for: "w\(n)", reachable: mesh.others(i))
                try mesh.deliver(update, from: i)
                outcome = result
                if case .needSpace(let donor) = result {
                    let d = mesh.names.firstIndex(of: donor)!
                    try mesh.deliver(mesh.managers[d].donate(to: mesh.names[i]), from: d)
                    donations += 1
                }
            } while tries < 4 && { if case .needSpace = outcome { return true } else { return false } }()
            guard case .allocated(let address) = outcome else { return XCTFail("w\(n) on \(i): \(outcome)") }
            XCTAssertNil(addresses.updateValue("w\(n)", forKey: "\(address)"), "\(address) given twice")
        }
        XCTAssertGreaterThan(donations, 0)
        // 64 addresses less the network and broadcast: 62; 40 used. The same holder keeps its address.
        XCTAssertEqual(mesh.managers[1].allocate(for: "w1", reachable: []).0, .allocated(IPAddress(addresses.first { $0.value == "w1" }!.key)!))

        // A hand-given address another workload has is refused with its holder named.
        let heldElsewhere = IPAddress(addresses.first { $0.value == "w0" }!.key)!
        XCTAssertEqual(mesh.managers[2].take(heldElsewhere, for: "manual").0, .held(router: mesh.names[1], holder: "w0"))
        // Outside the range: taken and announced; the same one by hand elsewhere is flagged.
        let (outside, outsideUpdate) = mesh.managers[2].take(IPAddress("10.99.0.1")!, for: "manual")
        XCTAssertEqual(outside, .outsideRange(alsoOn: []))
        try mesh.deliver(outsideUpdate, from: 2)
        XCTAssertEqual(mesh.managers[0].take(IPAddress("10.99.0.1")!, for: "other").0, .outsideRange(alsoOn: [(mesh.names[2], "manual")]))
        // Released, it can be taken by hand, and nobody hands it out meanwhile.
        try mesh.deliver(mesh.managers[1].release("w0"), from: 1)
        let (taken, update) = mesh.managers[2].take(heldElsewhere, for: "manual")
        XCTAssertEqual(taken, .taken)
        try mesh.deliver(update, from: 2)
        for n in 40..<60 {
            guard case .allocated(let a) = mesh.managers[1].allocate(for: "x\(n)", reachable: []).0 else { break }
            XCTAssertNotEqual(a, heldElsewhere)
        }
        print("ipam manager mesh: \(mesh.messages) messages, \(donations) donation requests")
    }

    func testAPoolOfAnotherSeedIsRefusedAndNamed() throws {
        let range = try AddressRange("10.32.0.0/12")
        var a = AddressManager(local: PeerName(value: 1), range: range, consensusSize: 1)
        var b = AddressManager(local: PeerName(value: 2), range: range, consensusSize: 1)
        _ = a.proposeIfDue(reachable: [], needed: false)
        _ = b.proposeIfDue(reachable: [], needed: false)
        XCTAssertTrue(a.ledger.isSeeded && b.ledger.isSeeded)
        let before = a.ledger
        _ = a.receive(b.fullUpdate, from: b.local)
        XCTAssertEqual(a.ledger, before)
        XCTAssertTrue(a.refusedPools[b.local]?.contains("started by \(b.local)") ?? false, "\(a.refusedPools)")
        // Another range: the whole update is set aside, votes included (they are another pool's),
        // so this router still divides its own range by itself.
        var other = AddressManager(local: PeerName(value: 3), range: try AddressRange("10.64.0.0/12"), consensusSize: 2)
        _ = other.receive(try .decode(a.fullUpdate.encode(range: a.range)), from: a.local)
        XCTAssertTrue(other.refusedPools[a.local]?.contains("10.32.0.0/12") ?? false)
        XCTAssertTrue(other.consensus.votes.keys.elementsEqual([other.local]), "no vote of the other pool taken")
    }

    func testUpdateWireFormRoundTripsAndRefusesDamage() throws {
        var mesh = try Mesh(count: 2, consensusSize: 2)
        try mesh.deliver(mesh.managers[0].proposeIfDue(reachable: [mesh.names[1]], needed: true), from: 0)
        _ = mesh.managers[0].allocate(for: "netns:web", reachable: [])
        let full = mesh.managers[0].fullUpdate
        XCTAssertFalse(full.votes.isEmpty || full.announcements.isEmpty || full.ledger == nil)
        let bytes = full.encode(range: mesh.managers[0].range)
        XCTAssertEqual(try AddressManager.Update.decode(bytes), full)
        for cut in stride(from: 0, to: bytes.count, by: 3) {
            XCTAssertThrowsError(try AddressManager.Update.decode(Array(bytes[..<cut])), "cut at \(cut)")
        }
        XCTAssertThrowsError(try AddressManager.Update.decode(bytes + [0]))
        XCTAssertThrowsError(try AddressManager.Update.decode([2]))
    }

    func testSavedStateRestoresAndDamageIsRefused() throws {
        let range = try AddressRange("10.32.0.0/12")
        var mesh = try Mesh(count: 2, consensusSize: 2)
        try mesh.deliver(mesh.managers[0].proposeIfDue(reachable: [mesh.names[1]], needed: true), from: 0)
        var m = mesh.managers[1]
        _ = m.allocate(for: "netns:a", reachable: [])
        _ = m.allocate(for: "netns:b", reachable: [])
        _ = m.release("netns:a")
        _ = m.take(IPAddress("192.168.9.9")!, for: "netns:manual")
        let saved = m.saved
        let json = try JSONEncoder().encode(saved)
        let restored = try AddressManager(restoring: try JSONDecoder().decode(AddressManager.Saved.self, from: json), local: m.local, range: range, consensusSize: 2)
        XCTAssertEqual(restored.ledger, m.ledger)
        XCTAssertEqual(restored.consensus.ownVote, m.consensus.ownVote)
        XCTAssertEqual(restored.allocations.byHolder, m.allocations.byHolder)
        XCTAssertEqual(restored.outside, m.outside)
        XCTAssertEqual(restored.announcements[m.local], m.announcements[m.local])
        XCTAssertEqual(restored.saved, saved)

        func refused(_ change: (inout AddressManager.Saved) -> Void, _ expected: String, range other: AddressRange? = nil) {
            var bad = saved
            change(&bad)
            XCTAssertThrowsError(try AddressManager(restoring: bad, local: m.local, range: other ?? range, consensusSize: 2)) {
                XCTAssertTrue("\($0)".contains(expected), "\($0)")
            }
        }
        refused({ _ in }, "launch with --ipalloc-range 10.32.0.0/12", range: try AddressRange("10.64.0.0/12"))
        refused({ $0.runs[0].count += 1 }, "ledger is damaged")
        refused({ $0.runs.removeLast() }, "ledger is damaged")
        refused({ $0.runs[0].owner = "nobody" }, "'nobody' is not a peer name")
        refused({ $0.addresses["netns:c"] = $0.addresses["netns:b"] }, "is listed for both")
        refused({ $0.addresses["netns:c"] = "10.32.0.0" }, "not a usable address")
        refused({ $0.addresses["netns:c"] = "192.168.0.1" }, "not a usable address")
        refused({ $0.accepted = .init(round: 99, proposer: $0.accepted!.proposer) }, "vote is damaged")
        refused({ $0.seedBy = nil; $0.seedNonce = nil }, "blocks but no seed")
        refused({ $0.outside["netns:x"] = "10.32.0.9" }, "listed as outside")
    }

    /// A router named alone divides the range by itself at launch; a router that names it and
    /// proposes before hearing its state (consensus 2) carries the decided value on: one pool,
    /// one seed, not two.
    func testALateProposerJoinsTheDecidedPool() throws {
        let range = try AddressRange("10.32.0.0/12")
        var first = AddressManager(local: PeerName(value: 1), range: range, consensusSize: 1)
        var second = AddressManager(local: PeerName(value: 2), range: range, consensusSize: 2)
        let decided = try XCTUnwrap(first.proposeIfDue(reachable: [], needed: false))
        XCTAssertEqual(first.ledger.shares, [first.local: 4096])
        let early = try XCTUnwrap(second.proposeIfDue(reachable: [first.local], needed: false), "all 2 of its consensus are there")
        var toSecond = [decided, early].compactMap { $0 }
        var toFirst = [early]
        for _ in 0..<4 {
            let a = toFirst.map { first.receive(try! .decode($0.encode(range: range)), from: second.local) }
            let b = toSecond.map { second.receive(try! .decode($0.encode(range: range)), from: first.local) }
            toSecond = a.filter { !$0.isEmpty }
            toFirst = b.filter { !$0.isEmpty }
        }
        XCTAssertTrue(second.ledger.isSeeded)
        XCTAssertEqual(second.ledger, first.ledger, "\(second.ledger) vs \(first.ledger)")
        XCTAssertTrue(first.refusedPools.isEmpty && second.refusedPools.isEmpty, "\(first.refusedPools) \(second.refusedPools)")
    }
}
