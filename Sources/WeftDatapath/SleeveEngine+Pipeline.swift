// The TAP → UDP direction of the sleeve as a two-stage pipeline which can run on one thread per
// stage, so that one busy direction (a single TCP stream) keeps two cores working:
//
//   stage 1, thread weft-tap-rx (`tapLoop`): reads a batch from the TAP, routes every frame,
//     builds the packets and stamps each with its header and its session's next counter, in
//     order. DATA packets (frames packed per peer) are sealed here and copied into a batch
//     slot (sent at once when stage 2 has no thread: nothing is queued ahead of them); the
//     FRAGMENT pieces of a super-frame are built directly in a train slot, in clear.
//   stage 2, thread weft-udp-tx (`sendLoop`) with WEFT_PIPELINE=on, else weft-tap-rx too: takes the slots in the order stage 1 published
//     them, seals every piece of a train in place (the bulk of the AEAD work: super-frames carry
//     nearly all the bytes of a TCP stream) and sends the slot: one UDP GSO send per train, one
//     sendmmsg per 64 packets of a batch.
//
// Counter order and the replay window. Stage 1 takes every counter it uses in increasing order
// and places the packets into slots in that order; the ring is FIFO and stage 2 sends slot after
// slot, each front to back, with one thread: so the packets of stage 1 leave in counter order,
// per session, exactly as they did from one thread. Other senders take counters of the same
// sessions and send at once — heartbeats and path-MTU probes (control plane) and relayed
// packets (weft-udp-rx) — and may overtake packets that stage 1 has stamped and stage 2 has not
// sent yet: at most the slots in the ring plus the one being filled and the one being sent,
// (pipelineDepth + 2) × 64 = 384 packets. The receiver's window is 8128 counters deep
// (protocol.md §5.1), so an overtaken packet is still accepted. (Before the pipeline the same
// overtaking was possible within one batch.)
//
// Nonces and keys. A counter comes from one atomic fetch-and-add on the session, so no two
// packets of a session share one, whichever thread stamps them. Stage 1 reads the session's
// keys once per super-frame, writes that epoch into every piece's header and puts that epoch's
// key into the slot; stage 2 seals each piece with the slot's key and the counter read back from
// the piece's own header (which is also the associated data), so the nonce is by construction
// the header's counter. A rekey while a train waits in the ring changes nothing for it: the
// packets say their epoch, and the receiver keeps the previous epoch for a grace period
// (protocol.md §3.7) far longer than a slot waits here (microseconds to milliseconds).
//
// Buffers. Stage 1 owns its TAP slab (SleeveEngine.tapLoop) for its whole life. Each slot's
// buffer belongs to the pipeline object, allocated once and freed when both threads have let go
// of it; a slot is stage 1's between `acquire` and `publish` and stage 2's between `take` and
// `release` (SlotRing). Per packet there is no allocation, lock or reference counting on the
// train path; per slot, the train's session and key are retained once.
//
// Off by default: both stages then run on the TAP thread (stage 1 seals and sends each slot
// itself as soon as it is filled), which is the single-threaded sleeve. `WEFT_PIPELINE=on` gives
// stage 2 its own thread. Measured on the 2-core development machine, where both routers, both
// iperf3 ends and the kernel share the two cores, the second thread did not help: against the
// single thread in the same run it gave 12 % less single-stream throughput encrypted and 26 %
// less in clear, for more router CPU per gigabit (wake-ups across cores; each 64 KiB train moves
// between the cores' caches), because there was no idle core for it to use (docs/benchmarks.md,
// "TAP → UDP pipeline"). It is meant for hosts with a core to spare.
import CWeftShims
import Foundation
import Synchronization
import WeftCrypto
import WeftWire

extension SleeveEngine {
    /// Slots between the stages: enough for stage 1 to build the next train while stage 2
    /// seals and sends the previous one; more would only let stage 1 run further ahead.
    static let pipelineDepth = 4
    /// A slot holds one GSO train (at most 65507 bytes, the largest UDP payload) or a batch of
    /// sealed packets.
    static let sendSlotCapacity = 65536

    /// What stage 1 hands to stage 2: a train (`trainBytes` > 0) or a batch (`out.count` > 0).
    struct SendSlot {
        /// `sendSlotCapacity` bytes of the pipeline's memory.
        let buffer: UnsafeMutableRawPointer
        /// A train: FRAGMENT pieces of one super-frame for one peer, back to back at `buffer`,
        /// every one `stride` bytes long but the last; headers and counters written, bodies in
        /// clear with room for the tag.
        var trainBytes = 0
        var stride = 0
        var session: SleeveSession?
        /// The key of the epoch the pieces' headers name; nil when they travel in clear.
        var key: PacketKey?
        var address = UnderlayAddress()
        /// A batch: sealed packets copied into `buffer` (and a train's pieces when UDP GSO is off).
        var out: OutBatch
    }

    /// The ring between the stages and the memory of its slots.
    final class SendPipeline: @unchecked Sendable {  // slots are owned one side at a time (SlotRing)
        let ring: SlotRing<SendSlot>
        /// false (the default): stage 1 seals and sends every slot itself.
        let threaded: Bool
        private let memory: UnsafeMutableRawPointer

        init(threaded: Bool) {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: SleeveEngine.pipelineDepth * SleeveEngine.sendSlotCapacity, alignment: 64)
            self.memory = memory
            self.threaded = threaded
            ring = SlotRing(depth: SleeveEngine.pipelineDepth) { i in
                SendSlot(buffer: memory + i * SleeveEngine.sendSlotCapacity, out: OutBatch(capacity: SleeveEngine.batch))
            }
        }

        deinit { memory.deallocate() }
    }

    /// `WEFT_PIPELINE=on`: stage 2 on its own thread (see the top of this file for why not by default).
    static var pipelineThreaded: Bool { ProcessInfo.processInfo.environment["WEFT_PIPELINE"] == "on" }

    // MARK: stage 1 (weft-tap-rx)

    /// The next free slot, waiting while stage 2 is behind; nil when the engine stops.
    func acquireSlot(_ pipeline: SendPipeline) -> UnsafeMutablePointer<SendSlot>? {
        pipeline.ring.acquire { stopping.load(ordering: .relaxed) }
    }

    /// Hands a filled slot to stage 2, or seals and sends it at once when stage 2 has no thread.
    func handOver(_ pipeline: SendPipeline) {
        pipeline.ring.publish()
        if !pipeline.threaded, let slot = pipeline.ring.take(giveUp: { true }) {
            sendSlot(slot)
            pipeline.ring.release()
        }
    }

    /// Copies the sealed packets of `out` (in stage 1's slab, which the next TAP read reuses)
    /// into batch slots, in order, and empties `out`. Without a stage 2 thread nothing is queued
    /// ahead of them (every slot is sent as soon as it is filled), so they go at once from where
    /// they are.
    func ship(_ out: inout OutBatch, _ pipeline: SendPipeline) {
        guard pipeline.threaded else { return flush(&out) }
        var i = 0
        while i < out.count {
            guard let slot = acquireSlot(pipeline) else { break }
            var used = 0
            while i < out.count, !slot.pointee.out.isFull, used + out.lengths[i] <= Self.sendSlotCapacity {
                let p = slot.pointee.buffer + used
                p.copyMemory(from: out.pointers[i]!, byteCount: out.lengths[i])
                slot.pointee.out.add(p, out.lengths[i], address: UnderlayAddress(raw: out.addresses[i]), session: out.sessions[i])
                used += (out.lengths[i] + 63) & ~63
                i += 1
            }
            handOver(pipeline)
        }
        out.clear()
    }

    // MARK: stage 2 (weft-udp-tx)

    /// Seals and sends slots in the order stage 1 published them, until the engine stops.
    func sendLoop(_ pipeline: SendPipeline) {
        while let slot = pipeline.ring.take(giveUp: { stopping.load(ordering: .relaxed) }) {
            sendSlot(slot)
            pipeline.ring.release()
        }
    }

    /// Seals a train's pieces, sends the slot and leaves it empty for reuse.
    func sendSlot(_ slot: UnsafeMutablePointer<SendSlot>) {
        if slot.pointee.trainBytes > 0, let session = slot.pointee.session {
            if let key = slot.pointee.key { Self.sealTrain(slot.pointee.buffer, bytes: slot.pointee.trainBytes, stride: slot.pointee.stride, key: key) }
            sendTrain(slot, session)
        }
        if slot.pointee.out.count > 0 { flush(&slot.pointee.out) }
        slot.pointee.trainBytes = 0
        slot.pointee.session = nil
        slot.pointee.key = nil
    }

    /// Seals every piece of a train in place, each with the counter in its own header.
    static func sealTrain(_ buffer: UnsafeMutableRawPointer, bytes: Int, stride: Int, key: PacketKey) {
        var offset = 0
        while offset < bytes {
            let p = buffer + offset
            let length = min(stride, bytes - offset)
            let counter = Sleeve.counter(p)
            _ = key.seal(p, headerLength: Sleeve.headerSize, bodyLength: length - Sleeve.headerSize - Sleeve.tagSize, counter: counter)
            offset += stride
        }
    }

    private func sendTrain(_ slot: UnsafeMutablePointer<SendSlot>, _ session: SleeveSession) {
        let buffer = slot.pointee.buffer, bytes = slot.pointee.trainBytes, stride = slot.pointee.stride
        if gsoEnabled.load(ordering: .relaxed) {
            while true {
                let sent = weft_send_gso(udpFD, buffer, bytes, UInt16(stride), &slot.pointee.address.raw)
                if sent >= 0 { return }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    var pw = pollfd(fd: udpFD, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pw, 1, 100)
                    continue
                }
                if errno == EIO || errno == EINVAL || errno == EOPNOTSUPP { gsoEnabled.store(false, ordering: .relaxed) }
                SleeveCounters.add(session.counters.dropTooBig, 1)
                return
            }
        }
        // Without UDP GSO: the pieces as separate datagrams.
        var offset = 0
        while offset < bytes {
            slot.pointee.out.add(buffer + offset, min(stride, bytes - offset), address: slot.pointee.address, session: session)
            offset += stride
        }
        flush(&slot.pointee.out)
    }
}
