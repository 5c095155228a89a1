// A bounded single-producer/single-consumer queue of preallocated slots, the hand-over between
// the two stages of the sleeve's TAP → UDP pipeline (SleeveEngine+Pipeline.swift). Slots are
// handed over whole, never copied: the producer fills a free slot in place and publishes it;
// the consumer takes published slots in exactly the order they were published and gives each
// back when it is done with it. Nothing is allocated after init, and nothing here is per packet:
// one hand-over moves a slot holding up to 64 packets.
//
// Ownership: between `acquire` and `publish` a slot belongs to the producer alone; between
// `take` and `release`, to the consumer alone; a slot that is neither is touched by nobody.
// Synchronisation is the textbook bounded buffer: `free` counts slots the producer may fill,
// `filled` slots the consumer may take, so each side sleeps (futex) only when the ring is full
// or empty. The happens-before edge from the producer's writes into a slot to the consumer's
// reads of it (and back, for reuse) is made explicit with release/acquire atomics, rather than
// left to what the semaphores imply.
import Dispatch
import Synchronization

final class SlotRing<Slot>: @unchecked Sendable {  // each slot has one owner at a time, see above
    let depth: Int
    private let slots: UnsafeMutablePointer<Slot>
    private let free: DispatchSemaphore
    private let filled = DispatchSemaphore(value: 0)
    /// Slots published so far (written by the producer only, with release).
    private let published = Atomic<Int>(0)
    /// Slots released so far (written by the consumer only, with release).
    private let released = Atomic<Int>(0)

    init(depth: Int, slot: (Int) -> Slot) {
        precondition(depth > 0)
        self.depth = depth
        // Created at 0 and raised to `depth`: libdispatch traps when a semaphore is freed with a
        // value below the one it was created with, which a ring dropped mid-flight would have.
        free = DispatchSemaphore(value: 0)
        for _ in 0..<depth { free.signal() }
        slots = .allocate(capacity: depth)
        for i in 0..<depth { (slots + i).initialize(to: slot(i)) }
    }

    deinit {
        slots.deinitialize(count: depth)
        slots.deallocate()
    }

    /// Producer: the next slot to fill, waiting while the ring is full; nil when `giveUp`
    /// answers true (it is asked every `patience` while waiting).
    func acquire(patience: DispatchTimeInterval = .milliseconds(100), giveUp: () -> Bool) -> UnsafeMutablePointer<Slot>? {
        while free.wait(timeout: .now() + patience) == .timedOut {
            if giveUp() { return nil }
        }
        let n = published.load(ordering: .relaxed)  // the producer's own counter
        // The consumer is done with this slot: its writes to it happened before this load.
        precondition(n - released.load(ordering: .acquiring) < depth, "SlotRing: producer overran the consumer")
        return slots + n % depth
    }

    /// Producer: hands the slot from the last `acquire` to the consumer.
    func publish() {
        published.wrappingAdd(1, ordering: .releasing)
        filled.signal()
    }

    /// Consumer: the oldest published slot, waiting while the ring is empty; nil when `giveUp`
    /// answers true (asked every `patience` while waiting).
    func take(patience: DispatchTimeInterval = .milliseconds(100), giveUp: () -> Bool) -> UnsafeMutablePointer<Slot>? {
        while filled.wait(timeout: .now() + patience) == .timedOut {
            if giveUp() { return nil }
        }
        let n = released.load(ordering: .relaxed)  // the consumer's own counter
        // The producer's writes to this slot happened before this load.
        precondition(published.load(ordering: .acquiring) > n, "SlotRing: consumer overran the producer")
        return slots + n % depth
    }

    /// Consumer: gives the slot from the last `take` back to the producer.
    func release() {
        released.wrappingAdd(1, ordering: .releasing)
        free.signal()
    }

    /// Slots published and not yet released (either side may ask; the answer may be stale).
    var inFlight: Int { published.load(ordering: .relaxed) - released.load(ordering: .relaxed) }
}
