// What `weft password use` answers (PasswordUseReport), in memory.
@testable import WeftRouter
import XCTest

final class PasswordUseReportTests: XCTestCase {
    let beta = PeerLabel(name: "02:00:00:00:00:02", nickname: "beta", uses: "1111111111111111")

    func testNoConnectionCanMoveWarnsAndNamesThePeers() {
        let text = PasswordUseReport.sentence(id: "2222222222222222", alreadyOn: 0, moved: 0, lacking: [beta])
        XCTAssertTrue(text.hasPrefix("warning: password 2222222222222222 is active here, but no connection can move to it"), text)
        XCTAssertTrue(text.contains("02:00:00:00:00:02 (beta) on 1111111111111111"), text)
        XCTAssertTrue(text.contains("`weft password use 1111111111111111`"), text)
    }

    func testSomeMovedNamesTheRest() {
        let text = PasswordUseReport.sentence(id: "2222222222222222", alreadyOn: 0, moved: 2, lacking: [beta])
        XCTAssertEqual(text, "password 2222222222222222 is active; 2 connections moved to it; warning: not moved, lacking it: "
                       + "02:00:00:00:00:02 (beta) on 1111111111111111; add it on them with `weft password add`")
        XCTAssertEqual(PasswordUseReport.sentence(id: "22", alreadyOn: 1, moved: 1, lacking: []),
                       "password 22 is active; 1 connection moved to it, 1 already used it")
    }
}
