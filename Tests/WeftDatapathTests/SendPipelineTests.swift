// The hand-over of the sleeve's TAP → UDP pipeline: the ring must deliver every slot exactly
// once, whole, in the order it was published (the send order, hence the counter order on the
// wire, rests on it).
import Foundation
import XCTest
@testable import WeftDatapath

final class SendPipelineTests: XCTestCase {
    /// A slot wide enough that a torn or stale read would show: every word holds the sequence.
    struct Wide { var words = [Int](repeating: -1, count: 16) }

    func testRingDeliversEverySlotOnceInOrderAcrossThreads() {
        let ring = SlotRing<Wide>(depth: 4) { _ in Wide() }
        let total = 200_000
        let producer = Thread {
            for n in 0..<total {
                guard let slot = ring.acquire(giveUp: { false }) else { return }
                for w in 0..<16 { slot.pointee.words[w] = n &+ w }
                ring.publish()
            }
        }
        producer.start()
        var expected = 0
        var torn = 0
        while expected < total {
            guard let slot = ring.take(patience: .seconds(10), giveUp: { true }) else { break }
            if slot.pointee.words[0] != expected { break }
            for w in 1..<16 where slot.pointee.words[w] != expected &+ w { torn += 1 }
            slot.pointee.words[0] = -1  // the consumer's write must not leak into a later delivery
            ring.release()
            expected += 1
        }
        XCTAssertEqual(expected, total, "slots lost, repeated or out of order")
        XCTAssertEqual(torn, 0)
        XCTAssertEqual(ring.inFlight, 0)
    }

    func testWaitsGiveUpWhenAskedAndTheRingStaysUsable() {
        let ring = SlotRing<Int>(depth: 2) { $0 }
        XCTAssertNil(ring.take(patience: .milliseconds(1), giveUp: { true }), "an empty ring has nothing to take")
        for value in [10, 11] {
            guard let slot = ring.acquire(patience: .milliseconds(1), giveUp: { true }) else { return XCTFail("free slot refused") }
            slot.pointee = value
            ring.publish()
        }
        XCTAssertNil(ring.acquire(patience: .milliseconds(1), giveUp: { true }), "a full ring has no free slot")
        XCTAssertEqual(ring.take(giveUp: { true })?.pointee, 10)
        ring.release()
        XCTAssertNotNil(ring.acquire(patience: .milliseconds(1), giveUp: { true }))
        ring.publish()
        XCTAssertEqual(ring.take(giveUp: { true })?.pointee, 11)
        ring.release()
        XCTAssertEqual(ring.inFlight, 1)
    }
}
