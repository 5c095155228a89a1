import XCTest
@testable import WeftMesh

/// The table of docs/design.md §5, row by row, plus the reasons status shows.
final class ModeSelectionTests: XCTestCase {
    func decide(password: Bool, trusted: Bool, local: String? = nil, remote: Bool = true,
                heartbeats: ModeSelection.Heartbeats = .ok) -> ModeDecision {
        ModeSelection.decide(passwordSet: password, trusted: trusted, localFastdp: local, remoteFastdp: remote, heartbeats: heartbeats)
    }

    func testPasswordAndUntrustedIsEncryptedSleeveWhateverFastdpDoes() {
        for heartbeats in [ModeSelection.Heartbeats.ok, .waiting, .lost(seconds: 9)] {
            let d = decide(password: true, trusted: false, heartbeats: heartbeats)
            XCTAssertEqual(d, ModeDecision(mode: .sleeve, encrypted: true, preferred: .sleeve, reason: nil))
        }
    }

    func testTrustedWithPasswordUsesFastdpWhenHeartbeatsWork() {
        XCTAssertEqual(decide(password: true, trusted: true), ModeDecision(mode: .fastdp, encrypted: false, preferred: .fastdp, reason: nil))
        let held = decide(password: true, trusted: true, heartbeats: .lost(seconds: 3))
        XCTAssertEqual(held.mode, .sleeve)
        XCTAssertFalse(held.encrypted)
        XCTAssertEqual(held.reason, "fastdp on hold: no heartbeat for 3 s")
    }

    func testNoPasswordFollowsHeartbeats() {
        XCTAssertEqual(decide(password: false, trusted: false).mode, .fastdp)
        XCTAssertEqual(decide(password: false, trusted: false, heartbeats: .waiting).mode, .sleeve)
        XCTAssertFalse(decide(password: false, trusted: false, heartbeats: .waiting).encrypted)
    }

    func testUnavailableFastdpSaysWhy() {
        let d = decide(password: true, trusted: true, local: "kernel has no openvswitch module")
        XCTAssertEqual(d.mode, .sleeve)
        XCTAssertEqual(d.preferred, .fastdp)
        XCTAssertEqual(d.reason, "fastdp unavailable: kernel has no openvswitch module")
        XCTAssertEqual(decide(password: false, trusted: false, remote: false).reason, "fastdp unavailable on the peer")
        XCTAssertEqual(decide(password: true, trusted: true, local: "disabled by --no-fastdp").reason, "fastdp unavailable: disabled by --no-fastdp")
    }
}
