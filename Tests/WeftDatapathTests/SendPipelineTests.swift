// The hand-over of the sleeve's TAP → UDP pipeline: the ring must deliver every slot exactly
// once, whole, in the order it was published (the send order, hence the counter order on the
// wire, rests on it); and stage 2 must seal each piece of a train with its own header's counter.
import Foundation
import XCTest
@testable import WeftCrypto
@testable import WeftDatapath
import WeftWire

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

    /// Pieces back to back, the last one shorter, each with its own counter: after `sealTrain`
    /// each opens with the key and the counter of its header, and only with those.
    func testSealTrainSealsEveryPieceWithItsHeadersCounter() {
        for cipher in DataCipher.allowedOnThisCPU {
            let key = PacketKey(cipher: cipher, key: (0..<32).map { UInt8($0) })
            let stride = 300
            let lastBody = 77
            let counters: [UInt64] = [5, 6, 9, 1 << 40]  // not consecutive: other senders take counters too
            let bytes = stride * (counters.count - 1) + Sleeve.headerSize + lastBody + Sleeve.tagSize
            var train = [UInt8](repeating: 0, count: bytes)
            train.withUnsafeMutableBytes { raw in
                let base = raw.baseAddress!
                for (i, counter) in counters.enumerated() {
                    let p = base + i * stride
                    Sleeve.writeHeader(Sleeve.Header(kind: .fragment, sealed: true, epoch: 3, sender: 1, receiver: 2, counter: counter), to: p)
                    let body = i == counters.count - 1 ? lastBody : stride - Sleeve.headerSize - Sleeve.tagSize
                    (p + Sleeve.headerSize).initializeMemory(as: UInt8.self, repeating: UInt8(i + 1), count: body)
                }
                SleeveEngine.sealTrain(base, bytes: bytes, stride: stride, key: key)
            }
            train.withUnsafeMutableBytes { raw in
                let base = raw.baseAddress!
                for (i, counter) in counters.enumerated() {
                    let p = base + i * stride
                    let length = min(stride, bytes - i * stride)
                    var copy = [UInt8](UnsafeRawBufferPointer(start: p, count: length))  // a wrong counter must not open it
                    XCTAssertEqual(copy.withUnsafeMutableBytes { key.open($0.baseAddress!, headerLength: Sleeve.headerSize, length: length, counter: counter &+ 1) }, -1)
                    let body = key.open(p, headerLength: Sleeve.headerSize, length: length, counter: counter)
                    XCTAssertEqual(body, length - Sleeve.headerSize - Sleeve.tagSize, "piece \(i)")
                    let plain = UnsafeRawBufferPointer(start: p + Sleeve.headerSize, count: max(body, 0))
                    XCTAssertTrue(plain.allSatisfy { $0 == UInt8(i + 1) }, "piece \(i)")
                }
            }
        }
    }
}
