// Rules between timers that live in different modules.
import WeftLink
import WeftMesh
import XCTest

final class TimingRuleTests: XCTestCase {
    /// A peer is forgotten only after every link claim to it has expired (docs/protocol.md §4.2):
    /// otherwise a router that was cut off while the peer left brings it back when it heals.
    func testRemovalGraceOutlastsTheLinkIdleTimeout() {
        XCTAssertGreaterThan(GossipTimings().unreachableGrace, Double(LinkTimings.idleTimeout) / 1e9 + 1)
    }
}
