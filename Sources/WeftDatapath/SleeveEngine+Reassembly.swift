// Super-frames (TCP segmentation offload) put back together on the UDP thread from the pieces
// that carried them (docs/protocol.md §5.5).
import WeftWire

extension SleeveEngine {
    /// Pieces of super-frames being put back together: a few slots shared by all peers, the
    /// oldest reused first, so memory stays bounded whatever arrives.
    struct Reassembly {
        static let slots = 8
        static let slotSize = VirtioNetHeader.size + 65536
        let buffer: UnsafeMutableRawPointer
        var source = [UInt16](repeating: 0, count: slots)
        var frameId = [UInt32](repeating: 0, count: slots)
        var received = [Int](repeating: 0, count: slots)
        var count = [Int](repeating: 0, count: slots)
        var chunkSize = [UInt16](repeating: 0, count: slots)
        var totalLength = [UInt32](repeating: 0, count: slots)
        var seen = [(UInt64, UInt64)](repeating: (0, 0), count: slots)
        var inUse = [Bool](repeating: false, count: slots)
        var age = [UInt64](repeating: 0, count: slots)
        var clock: UInt64 = 0

        init() { buffer = .allocate(byteCount: Self.slots * Self.slotSize, alignment: 64) }

        /// Adds a piece; returns the slot when the super-frame is complete.
        mutating func add(_ h: FragmentHeader, chunk: UnsafeRawPointer, length: Int) -> Int? {
            clock += 1
            var slot = (0..<Self.slots).first { inUse[$0] && source[$0] == h.source && frameId[$0] == h.frameId } ?? -1
            if slot < 0 {
                slot = (0..<Self.slots).first { !inUse[$0] } ?? (0..<Self.slots).min { age[$0] < age[$1] }!
                inUse[slot] = true
                source[slot] = h.source
                frameId[slot] = h.frameId
                received[slot] = 0
                count[slot] = Int(h.count)
                chunkSize[slot] = h.chunkSize
                totalLength[slot] = h.totalLength
                seen[slot] = (0, 0)
                h.virtio.storeNative(buffer + slot * Self.slotSize)
            }
            age[slot] = clock
            // A piece that describes the frame otherwise than the first one (another count, chunk
            // size or total) is dropped: with it, the pieces would not tile the frame, and bytes
            // of an earlier frame in this slot would go out as part of this one.
            guard count[slot] == Int(h.count), chunkSize[slot] == h.chunkSize, totalLength[slot] == h.totalLength else { return nil }
            let bit = Int(h.index)
            let mask: UInt64 = 1 << UInt64(bit & 63)
            if bit < 64 {
                guard seen[slot].0 & mask == 0 else { return nil }
                seen[slot].0 |= mask
            } else {
                guard seen[slot].1 & mask == 0 else { return nil }
                seen[slot].1 |= mask
            }
            (buffer + slot * Self.slotSize + VirtioNetHeader.size + h.offset).copyMemory(from: chunk, byteCount: length)
            received[slot] += 1
            guard received[slot] == count[slot] else { return nil }
            inUse[slot] = false
            return slot
        }
    }
}
