import XCTest
@testable import WeftCrypto

final class ReplayWindowTests: XCTestCase {
    func testDuplicatesAreRejectedAndReorderingInsideTheWindowIsAccepted() {
        var w = ReplayWindow()
        XCTAssertTrue(w.commit(0))
        XCTAssertFalse(w.commit(0))
        XCTAssertTrue(w.commit(5))
        XCTAssertTrue(w.commit(3), "late but inside the window")
        XCTAssertFalse(w.commit(3))
        XCTAssertTrue(w.commit(1))
        XCTAssertTrue(w.commit(2))
        XCTAssertTrue(w.commit(4))
        XCTAssertFalse(w.commit(5))
    }

    func testTooOldIsRejectedAndLargeJumpsClearTheWindow() {
        var w = ReplayWindow()
        XCTAssertTrue(w.commit(100_000))
        XCTAssertFalse(w.check(100_000 - ReplayWindow.size))
        XCTAssertTrue(w.check(100_000 - ReplayWindow.size + 1))
        XCTAssertTrue(w.commit(100_000 - 5))
        XCTAssertTrue(w.commit(10_000_000), "a jump forward")
        XCTAssertFalse(w.commit(10_000_000))
        XCTAssertTrue(w.commit(10_000_000 - 1), "bits from before the jump must not leak into the new window")
        XCTAssertFalse(w.commit(100_000 - 5), "far behind the new window")
    }

    func testCheckDoesNotMoveTheWindow() {
        var w = ReplayWindow()
        w.commit(10)
        XCTAssertTrue(w.check(1_000_000))
        XCTAssertTrue(w.commit(9), "check of a forged far-future counter changed nothing")
    }

    /// Against a model: a set of seen counters and the highest one.
    func testMatchesAModelUnderRandomTraffic() {
        var rng = SystemRandomNumberGenerator()
        var w = ReplayWindow()
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        var base: UInt64 = 0
        for _ in 0..<200_000 {
            base += UInt64.random(in: 0...3, using: &rng)
            let counter = base > 9000 ? base - UInt64.random(in: 0...9000, using: &rng) : UInt64.random(in: 0...base, using: &rng)
            let fresh = !seen.contains(counter) && (seen.isEmpty || counter > highest || highest - counter < ReplayWindow.size)
            XCTAssertEqual(w.commit(counter), fresh, "counter \(counter) highest \(highest)")
            if fresh {
                seen.insert(counter)
                highest = max(highest, counter)
            }
        }
    }
}
