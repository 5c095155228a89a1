// The per-destination payload limit the data plane checks every frame against: the first hop's
// live path payload and the route's MTU from the table (docs/protocol.md §4.5), no walk.
import Foundation
import XCTest
@testable import WeftDatapath
import WeftWire

final class ForwardingTableTests: XCTestCase {
    func testPayloadLimitIsTheSmallerOfTheFirstHopAndTheRoute() {
        let hop = SleeveSession(peerShortId: 2, keys: SessionKeys(txEpoch: 0, tx: nil, rx: []),
                                address: SleeveSession.address(ip: "198.18.0.2", port: 6783)!, maxPayload: 1472)
        // 3 (us) → 2 → 1: the route to 1 carries 1320; 2 itself is only the first hop.
        let table = ForwardingTable(ownShortId: 3, sessions: [2: hop], nextHop: [2: 2, 1: 2], broadcast: [:],
                                    pathMTU: [1: 1320, 2: 1420])
        XCTAssertEqual(table.payloadLimit(to: 1, via: hop), Sleeve.payload(overlayMTU: 1320))
        XCTAssertEqual(Sleeve.overlayMTU(payload: table.payloadLimit(to: 1, via: hop)), 1320)
        XCTAssertEqual(table.payloadLimit(to: 2, via: hop), 1472)
        // Unknown routes and flooded frames: the first hop alone.
        XCTAssertEqual(table.payloadLimit(to: 7, via: hop), 1472)
        XCTAssertEqual(table.payloadLimit(to: Sleeve.broadcastShortId, via: hop), 1472)
        // The first hop shrinks (a probing round): it counts at once, before any new table.
        hop.pathPayload.store(1272, ordering: .relaxed)
        XCTAssertEqual(table.payloadLimit(to: 1, via: hop), 1272)
    }
}
