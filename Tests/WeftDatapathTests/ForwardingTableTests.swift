// The per-destination payload limit the data plane checks every frame against: the first hop's
// live path payload and the route's MTU from the table (docs/protocol.md §4.5), no walk.
import Foundation
import XCTest
@testable import WeftDatapath
import WeftWire
@testable import WeftMesh

final class ForwardingTableTests: XCTestCase {
    func testPayloadLimitIsTheSmallerOfTheFirstHopAndTheRoute() {
        let hop = SleeveSession(peerShortId: 2, keys: SessionKeys(txEpoch: 0, tx: nil, rx: []),
                                address: UnderlayAddress(ip: IPAddress("198.18.0.2")!, port: 6783, socketFamily: AF_INET6)!, underlayMTU: 1500)
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

final class ForwardingTableBuildTests: XCTestCase {
    private func name(_ n: UInt8) -> PeerName { PeerName(bytes: [0x02, 0, 0, 0, 0, n]) }

    private func entry(_ n: UInt8, shortId: UInt16, linkedTo: [UInt8], mtu: Int? = nil) -> PeerEntry {
        PeerEntry(name: name(n), nickname: "r\(n)", uid: UInt64(n), version: 1, shortId: shortId,
                  connections: linkedTo.map { ConnectionEntry(remote: name($0), address: "198.18.0.\($0):6783", established: true, outbound: true, mtu: mtu) })
    }

    /// A line 1–2–3 seen from 1: 3 is reached through 2, the route MTU is keyed by short id,
    /// 2 passes on what 1 floods and 1 passes on nothing of 3's; a session for a peer the
    /// topology does not list is left out.
    func testLineFromOneEnd() {
        var topology = Topology(own: entry(1, shortId: 11, linkedTo: [2]))
        _ = topology.merge(TopologyUpdate(peers: [entry(2, shortId: 22, linkedTo: [1, 3]), entry(3, shortId: 33, linkedTo: [2])]))
        let routes = topology.routes()
        let address = UnderlayAddress(ip: IPAddress("198.18.0.2")!, port: 6783, socketFamily: AF_INET6)!
        let two = SleeveSession(peerShortId: 0, keys: SessionKeys(txEpoch: 0, tx: nil, rx: []), address: address, underlayMTU: 1500)
        let stranger = SleeveSession(peerShortId: 0, keys: SessionKeys(txEpoch: 0, tx: nil, rx: []), address: address, underlayMTU: 1500)
        let table = ForwardingTable.build(topology: topology, routes: routes, sessions: [name(2): two, name(9): stranger],
                                          pathMTU: [name(2): 1420, name(3): 1320])
        XCTAssertEqual(table.ownShortId, 11)
        XCTAssertTrue(table.route(to: 33) === two)
        XCTAssertTrue(table.route(to: 22) === two)
        XCTAssertNil(table.route(to: 11))
        XCTAssertNil(table.session(0), "the stranger's session has no short id")
        XCTAssertEqual(table.payloadLimit(to: 33, via: two), Sleeve.payload(overlayMTU: 1320))
        XCTAssertEqual(table.broadcast[11], [22])
        XCTAssertEqual(table.broadcast[33], [])
    }
}
