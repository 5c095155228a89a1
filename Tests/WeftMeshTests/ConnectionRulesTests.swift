import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

final class ConnectionRulesTests: XCTestCase {
    func testBackoffBounds() {
        let b = Backoff()
        XCTAssertEqual(b.delay(afterFailures: 0, randomUnit: 0.5), 0)
        XCTAssertEqual(b.delay(afterFailures: 1, randomUnit: 0), 0.75)
        XCTAssertEqual(b.delay(afterFailures: 1, randomUnit: 0.5), 1)
        XCTAssertEqual(b.delay(afterFailures: 1, randomUnit: 1), 1.25)
        XCTAssertLessThan(b.delay(afterFailures: 1, randomUnit: 0.999_999), 1.25)
        for n in 1...6 { XCTAssertEqual(b.delay(afterFailures: n, randomUnit: 0.5), Double(1 << (n - 1))) }
        XCTAssertEqual(b.delay(afterFailures: 7, randomUnit: 0.5), 60)
        for n in [7, 8, 63, 64, 1000, Int.max] {
            XCTAssertEqual(b.delay(afterFailures: n, randomUnit: 0), 45)
            XCTAssertEqual(b.delay(afterFailures: n, randomUnit: 1), 75)
        }
        // Out-of-range units are clamped.
        XCTAssertEqual(b.delay(afterFailures: 1, randomUnit: -3), 0.75)
        XCTAssertEqual(b.delay(afterFailures: 1, randomUnit: 7), 1.25)
        XCTAssertEqual(b.delay(afterFailures: 1, randomUnit: .nan), 1)
        XCTAssertEqual(Backoff.wrongPassword.delay(afterFailures: 1, randomUnit: 0.5), 15)
        XCTAssertEqual(Backoff.wrongPassword.delay(afterFailures: 3, randomUnit: 0.5), 60)
    }

    func testBackoffIsMonotone() {
        let b = Backoff()
        var g = SplitMix64(seed: 30)
        let units = ((0..<200).map { _ in Double.random(in: 0..<1, using: &g) } + [0, 1]).sorted()
        var previousMax = 0.0
        for n in 1...12 {
            let delays = units.map { b.delay(afterFailures: n, randomUnit: $0) }
            XCTAssertEqual(delays, delays.sorted(), "monotone in randomUnit")
            XCTAssertGreaterThanOrEqual(delays.first!, min(60, Double(1 << (n - 1))) * 0.75)
            XCTAssertLessThanOrEqual(delays.last!, min(60, Double(1 << (n - 1))) * 1.25)
            XCTAssertGreaterThanOrEqual(b.delay(afterFailures: n, randomUnit: 0.5), previousMax / 1.25 * 1.0)
            previousMax = b.delay(afterFailures: n, randomUnit: 0.5) * 1.25
        }
    }

    func testDuplicateConnectionRuleIsSymmetric() {
        var g = SplitMix64(seed: 31)
        for _ in 0..<1000 {
            let a = PeerName.random(using: &g), b = PeerName.random(using: &g)
            guard a != b else { continue }
            // Exactly one side keeps its outbound: the survivor is the same connection on both ends.
            XCTAssertNotEqual(DuplicateConnections.keepOutbound(local: a, remote: b),
                              DuplicateConnections.keepOutbound(local: b, remote: a))
            // The kept one is dialed by the smaller name.
            XCTAssertEqual(DuplicateConnections.keepOutbound(local: a, remote: b), a < b)
        }
    }

    /// Of two routers that learn of each other together, exactly one dials at once: the one
    /// whose connection the duplicate rule keeps. The other waits 3–5 s.
    func testExactlyOneSideDialsALearnedPeerAtOnce() {
        var g = SplitMix64(seed: 32)
        for _ in 0..<1000 {
            let a = PeerName.random(using: &g), b = PeerName.random(using: &g)
            guard a != b else { continue }
            let unit = Double.random(in: 0..<1, using: &g)
            let (ab, ba) = (DialRules.firstAttemptDelay(local: a, remote: b, randomUnit: unit),
                            DialRules.firstAttemptDelay(local: b, remote: a, randomUnit: unit))
            XCTAssertEqual(min(ab, ba), 0)
            XCTAssertEqual(ab == 0, DuplicateConnections.keepOutbound(local: a, remote: b), "the kept dial goes first")
            XCTAssertGreaterThanOrEqual(max(ab, ba), DialRules.learnedPeerDeferral * 0.75)
            XCTAssertLessThanOrEqual(max(ab, ba), DialRules.learnedPeerDeferral * 1.25)
        }
        let (small, large) = (PeerName(value: 1), PeerName(value: 2))
        XCTAssertEqual(DialRules.firstAttemptDelay(local: large, remote: small, randomUnit: 0), 3)
        XCTAssertEqual(DialRules.firstAttemptDelay(local: large, remote: small, randomUnit: 1), 5)
        XCTAssertEqual(DialRules.firstAttemptDelay(local: large, remote: small, randomUnit: .nan), 4)
        XCTAssertEqual(DialRules.firstAttemptDelay(local: large, remote: small, randomUnit: -1), 3)
    }
}
