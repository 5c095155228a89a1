// The add-only revocation set and `weft revoke PEER`'s choice of peer (docs/protocol.md §3.11).
import WeftMesh
import WeftTestSupport
import WeftWire
import XCTest

final class RevocationSetTests: XCTestCase {
    func record(_ n: UInt8, by: UInt64 = 0x0200_0000_00FF, at: UInt64 = 1000, nickname: String = "") -> Revocation {
        Revocation(key: [UInt8](repeating: n, count: 32), name: PeerName(value: 0x0200_0000_0000 | UInt64(n)),
                   nickname: nickname, revokedBy: PeerName(value: by), at: at)
    }

    func testMergeAddsOnlyWhatIsNewAndNothingRemoves() {
        var set = RevocationSet()
        XCTAssertEqual(set.merge([record(1), record(2)]).count, 2)
        XCTAssertEqual(set.merge([record(1), record(2)]), [], "repeated gossip changes nothing and is not passed on")
        XCTAssertEqual(set.merge([record(3)]), [record(3)])
        XCTAssertEqual(set.count, 3)
        XCTAssertTrue(set.contains(key: record(2).key))
        XCTAssertFalse(set.contains(key: record(9).key))
        // A later record of a held key (a revoked router "revoking itself again" with another
        // time, or any other variant) neither removes nor replaces it.
        XCTAssertEqual(set.merge([record(2, at: 5000)]), [])
        XCTAssertEqual(set.record(forKey: record(2).key)?.at, 1000)
        // A wrong-length key is ignored.
        XCTAssertEqual(set.merge([Revocation(key: [1, 2, 3], name: PeerName(value: 2), nickname: "", revokedBy: PeerName(value: 2), at: 1)]), [])
    }

    func testTwoRevocationsOfOneKeySettleOnTheSameRecordEverywhere() {
        // Revoked on two routers at once: whichever order the records arrive in, every router keeps
        // the earlier one (then the smaller revoking name).
        let a = record(7, by: 0x0200_0000_0010, at: 2000)
        let b = record(7, by: 0x0200_0000_0020, at: 1500)
        let c = record(7, by: 0x0200_0000_0005, at: 1500)
        var one = RevocationSet(), two = RevocationSet()
        one.merge([a]); one.merge([b]); one.merge([c])
        two.merge([c, a, b])
        XCTAssertEqual(one, two)
        XCTAssertEqual(one.record(forKey: a.key), c)
    }

    func testMergeIsOrderIndependentOverRandomHistories() {
        var generator = SplitMix64(seed: 12)
        for round in 0..<200 {
            let records = (0..<12).map { _ in
                record(UInt8.random(in: 1...5, using: &generator), by: UInt64.random(in: 1...4, using: &generator) | 0x0200_0000_0000,
                       at: UInt64.random(in: 1...3, using: &generator), nickname: ["", "a", "b"].randomElement(using: &generator)!)
            }
            var inOrder = RevocationSet()
            for r in records { inOrder.merge([r]) }
            var shuffled = RevocationSet()
            var batches = records.shuffled(using: &generator)
            while !batches.isEmpty {
                let n = Int.random(in: 1...batches.count, using: &generator)
                shuffled.merge(Array(batches.prefix(n)))
                batches.removeFirst(n)
            }
            XCTAssertEqual(inOrder, shuffled, "round \(round)")
            XCTAssertEqual(RevocationSet(inOrder.sorted), inOrder, "round \(round): the set rebuilt from its list")
        }
    }

    // MARK: weft revoke PEER

    let candidates = [
        PeerCandidate(name: PeerName("02:00:00:00:00:01")!, nickname: "db-1", fingerprint: "0123456789abcdef0123456789abcdef", key: [UInt8](repeating: 1, count: 32)),
        PeerCandidate(name: PeerName("02:00:00:00:00:02")!, nickname: "web", fingerprint: "01234567ffffffff0123456789abcdef", key: [UInt8](repeating: 2, count: 32)),
        PeerCandidate(name: PeerName("02:00:00:00:00:03")!, nickname: "web", fingerprint: "fedcba9876543210fedcba9876543210", key: [UInt8](repeating: 3, count: 32)),
    ]

    func testPeerIsChosenByNameFingerprintNicknameOrPrefix() {
        XCTAssertEqual(PeerSelector.select("02:00:00:00:00:02", among: candidates), .success(candidates[1]))
        XCTAssertEqual(PeerSelector.select(" 02:00:00:00:00:03 ", among: candidates), .success(candidates[2]), "blanks around are dropped")
        XCTAssertEqual(PeerSelector.select("FEDCBA9876543210FEDCBA9876543210", among: candidates), .success(candidates[2]), "a whole fingerprint, any case")
        XCTAssertEqual(PeerSelector.select("db-1", among: candidates), .success(candidates[0]))
        XCTAssertEqual(PeerSelector.select("fedcba98", among: candidates), .success(candidates[2]), "an 8-digit prefix")
    }

    func testAmbiguousOrUnknownPeersAreRefusedWithTheCandidates() {
        guard case .failure(.ambiguous(_, let matches)) = PeerSelector.select("web", among: candidates) else {
            return XCTFail("two routers call themselves web")
        }
        XCTAssertEqual(matches.map(\.name), [candidates[1].name, candidates[2].name])
        XCTAssertTrue(PeerSelectionError.ambiguous("web", matches).description.contains("02:00:00:00:00:03"))
        guard case .failure(.ambiguous) = PeerSelector.select("01234567", among: candidates) else {
            return XCTFail("a prefix two fingerprints share names neither")
        }
        XCTAssertEqual(PeerSelector.select("0123456", among: candidates), .failure(.notFound("0123456")), "under 8 digits is no prefix")
        XCTAssertEqual(PeerSelector.select("02:00:00:00:00:0f", among: candidates), .failure(.notFound("02:00:00:00:00:0f")))
        XCTAssertEqual(PeerSelector.select("  ", among: candidates), .failure(.empty))
    }
}
