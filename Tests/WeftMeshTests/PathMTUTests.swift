import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

final class PathMTUTests: XCTestCase {
    /// `all` with `from` reporting `mtu` for its connection to `to`.
    private func reporting(_ all: [PeerName: PeerEntry], _ from: PeerName, _ to: PeerName, _ mtu: Int?) -> [PeerName: PeerEntry] {
        var all = all
        for i in all[from]!.connections.indices where all[from]!.connections[i].remote == to { all[from]!.connections[i].mtu = mtu }
        return all
    }

    func testLineTakesTheSmallestHop() {
        // The line: 3–2 carries 1420, 2–1 only 1320; 3 sees 1320 towards 1.
        let (one, two, three) = (peer(1), peer(2), peer(3))
        var all = entries(nodes: [one, two, three], edges: [(one, two), (two, three)])
        all = reporting(all, two, one, 1320)
        all = reporting(all, two, three, 1420)
        all = reporting(all, three, two, 1420)
        let routes = topology(of: three, all).routes()
        XCTAssertEqual(routes.pathMTU(peers: all), [two: 1420, one: 1320])
        // The live first-hop figure wins over the gossiped one.
        XCTAssertEqual(routes.pathMTU(peers: all, firstHop: [two: 1300]), [two: 1300, one: 1300])
    }

    func testUnmeasuredHopsDoNotLimitAndTheReverseDirectionStandsIn() {
        let (one, two, three) = (peer(1), peer(2), peer(3))
        let all = entries(nodes: [one, two, three], edges: [(one, two), (two, three)])
        // Nothing measured: nothing known.
        XCTAssertEqual(topology(of: three, all).routes().pathMTU(peers: all), [:])
        // Only host 1 measured its side of 1–2: host 3 uses it for 2 → 1.
        let some = reporting(all, one, two, 1320)
        XCTAssertEqual(topology(of: three, some).routes().pathMTU(peers: some), [one: 1320])
        // A direction's own report wins over the reverse one.
        let both = reporting(some, two, one, 1400)
        XCTAssertEqual(topology(of: three, both).routes().pathMTU(peers: both), [one: 1400])
        // A pending (not established) connection's figure is not used.
        var pending = all
        pending[two]!.connections.append(ConnectionEntry(remote: peer(9), address: "x:1", established: false, outbound: true, mtu: 600))
        XCTAssertEqual(topology(of: three, pending).routes().pathMTU(peers: pending), [:])
    }

    func testRouteChangesMoveTheFigure() {
        // A direct 1–3 link appears: 3 no longer goes through the small hop.
        let (one, two, three) = (peer(1), peer(2), peer(3))
        var all = entries(nodes: [one, two, three], edges: [(one, two), (two, three), (one, three)])
        all = reporting(all, two, one, 1320)
        all = reporting(all, three, two, 1420)
        all = reporting(all, three, one, 1420)
        XCTAssertEqual(topology(of: three, all).routes().pathMTU(peers: all)[one], 1420)
        // It goes again: back through 2.
        var line = entries(nodes: [one, two, three], edges: [(one, two), (two, three)])
        line = reporting(line, two, one, 1320)
        line = reporting(line, three, two, 1420)
        XCTAssertEqual(topology(of: three, line).routes().pathMTU(peers: line)[one], 1320)
        // The relay moves: 3 reaches 1 through 4 (1400 all the way) once 2 is gone.
        let four = peer(4)
        var moved = entries(nodes: [one, three, four], edges: [(one, four), (four, three)])
        moved = reporting(moved, four, one, 1400)
        moved = reporting(moved, three, four, 1420)
        XCTAssertEqual(topology(of: three, moved).routes().pathMTU(peers: moved)[one], 1400)
    }

    func testUnreachablePeersAreLeftOut() {
        let (one, two, three) = (peer(1), peer(2), peer(3))
        var all = entries(nodes: [one, two, three], edges: [(one, two)])
        all = reporting(all, one, two, 1320)
        XCTAssertEqual(topology(of: one, all).routes().pathMTU(peers: all), [two: 1320])
    }

    func testSettleTakesTheFirstRoundAndThenOnlyAgreeingRounds() {
        XCTAssertEqual(PathMTU.settle(published: nil, previousRound: nil, round: 1420), 1420)
        // One round lower (a lost probe): not yet.
        XCTAssertEqual(PathMTU.settle(published: 1420, previousRound: 1420, round: 1320), 1420)
        // Two rounds agree: published.
        XCTAssertEqual(PathMTU.settle(published: 1420, previousRound: 1320, round: 1320), 1320)
        // Up again takes two rounds too.
        XCTAssertEqual(PathMTU.settle(published: 1320, previousRound: 1320, round: 1420), 1320)
        XCTAssertEqual(PathMTU.settle(published: 1320, previousRound: 1420, round: 1420), 1420)
        XCTAssertEqual(PathMTU.settle(published: 1420, previousRound: 1420, round: 1420), 1420)
    }
}

final class ProbeScheduleTests: XCTestCase {
    /// Payload sizes of the IPv4 ladder under a 1500 underlay (docs/protocol.md §5.4).
    /// A session connected at 0 whose first (full) round ran from 0.5 to 2 s.
    private func afterFirstRound(answered: Bool, randomUnit: Double = 0.5, file: StaticString = #filePath, line: UInt = #line) -> ProbeSchedule {
        var schedule = ProbeSchedule(connectedAt: 0)
        XCTAssertTrue(schedule.startRound(now: 0.5), file: file, line: line)
        schedule.endRound(now: 2, answered: answered, randomUnit: randomUnit)
        return schedule
    }

    private let ladder = [1472, 1464, 1452, 1432, 1426, 1422, 1412, 1392, 1372, 1352, 1332, 1322, 1272, 1252, 1172, 972, 548]

    func testFirstRoundIsFullAndSoonAfterTheConnection() {
        var schedule = ProbeSchedule(connectedAt: 100)
        XCTAssertFalse(schedule.startRound(now: 100.4))
        XCTAssertTrue(schedule.startRound(now: 100.5))
        XCTAssertEqual(schedule.sizes(ladder: ladder.shuffled(), current: 1472), ladder)
        // Not twice, and not before the answers had their time.
        XCTAssertFalse(schedule.startRound(now: 100.6))
        XCTAssertFalse(schedule.resultsAreDue(now: 101.9))
        XCTAssertTrue(schedule.resultsAreDue(now: 102.0))
    }

    func testAnsweredFullRoundLeadsToReducedRoundsOneIntervalLater() {
        var schedule = afterFirstRound(answered: true)
        XCTAssertFalse(schedule.full)
        XCTAssertEqual(schedule.nextRound, 12)
        XCTAssertFalse(schedule.startRound(now: 11.9))
        XCTAssertTrue(schedule.startRound(now: 12))
        // The current size and every candidate above it: a path that grew is found in one round.
        XCTAssertEqual(schedule.sizes(ladder: ladder, current: 1372), [1472, 1464, 1452, 1432, 1426, 1422, 1412, 1392, 1372])
        // At the top of the ladder: one packet.
        XCTAssertEqual(schedule.sizes(ladder: ladder, current: 1472), [1472])
        // A current size that is no candidate (a roaming peer's new family) is probed as it is.
        XCTAssertEqual(schedule.sizes(ladder: ladder, current: 1460), [1472, 1464, 1460])
    }

    func testIntervalIsSpreadByTheRandomFactor() {
        for (unit, expected) in [(0.0, 9.0), (0.999_999, 11.0), (.nan, 10.0), (7, 11.0), (-1, 9.0)] {
            let schedule = afterFirstRound(answered: true, randomUnit: unit)
            XCTAssertEqual(schedule.nextRound!, 2 + expected, accuracy: 1e-4, "unit \(unit)")
        }
    }

    func testUnansweredReducedRoundIsFollowedByAFullOneAtOnce() {
        var schedule = afterFirstRound(answered: true)
        XCTAssertTrue(schedule.startRound(now: 12))
        // The path shrank below the current size: nothing of the reduced round comes back.
        schedule.endRound(now: 13.5, answered: false, randomUnit: 0.5)
        XCTAssertTrue(schedule.full)
        XCTAssertEqual(schedule.nextRound, 14)
        XCTAssertTrue(schedule.startRound(now: 14))
        XCTAssertEqual(schedule.sizes(ladder: ladder, current: 1372), ladder)
        // The full round measures the smaller size: reduced again afterwards.
        schedule.endRound(now: 15.5, answered: true, randomUnit: 0.5)
        XCTAssertFalse(schedule.full)
        XCTAssertEqual(schedule.nextRound, 25.5)
    }

    func testUnansweredFullRoundOfAMeasuredPathStaysFullAtTheNormalInterval() {
        // A path that worked and died: not a full round every second, one per interval.
        var schedule = afterFirstRound(answered: true)
        XCTAssertTrue(schedule.startRound(now: 12))
        schedule.endRound(now: 13.5, answered: false, randomUnit: 0.5)
        XCTAssertTrue(schedule.startRound(now: 14))
        schedule.endRound(now: 15.5, answered: false, randomUnit: 0.5)
        XCTAssertTrue(schedule.full)
        XCTAssertEqual(schedule.nextRound, 25.5)
        // Ending a round that is not under way changes nothing.
        let before = schedule
        schedule.endRound(now: 16, answered: true, randomUnit: 0.5)
        XCTAssertEqual(schedule, before)
    }

    func testUnansweredRoundsBeforeTheFirstAnswerAreRetriedSoonThenAtTheInterval() {
        // The peer's session was not up yet when the first round left: the new link's figure
        // must not wait a whole interval (its path payload meanwhile is the underlay's, perhaps
        // too large for the path).
        var schedule = afterFirstRound(answered: false)
        XCTAssertFalse(schedule.measured)
        var now = 2.0
        for delay in [1.0, 2, 4, 8, 10, 10] {
            XCTAssertTrue(schedule.full)
            XCTAssertEqual(schedule.nextRound!, now + delay, accuracy: 1e-9)
            now += delay
            XCTAssertTrue(schedule.startRound(now: now))
            now += ProbeSchedule.wait
            schedule.endRound(now: now, answered: false, randomUnit: 0.5)
        }
        // The first answer: reduced rounds at the interval from then on.
        var fresh = afterFirstRound(answered: false)
        XCTAssertTrue(fresh.startRound(now: 3))
        fresh.endRound(now: 4.5, answered: true, randomUnit: 0.5)
        XCTAssertTrue(fresh.measured)
        XCTAssertFalse(fresh.full)
        XCTAssertEqual(fresh.nextRound, 14.5)
    }
}
