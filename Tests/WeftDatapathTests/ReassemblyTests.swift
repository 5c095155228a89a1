// FRAGMENT reassembly (SleeveEngine+Reassembly.swift) in memory: pieces in any order complete a
// super-frame; pieces that disagree on its shape never hand over bytes of an earlier frame.
import WeftTestSupport
import WeftWire
import XCTest
@testable import WeftDatapath

final class ReassemblyTests: XCTestCase {
    /// Feeds FRAGMENT bodies framed as the fuzz target reads them (u16 length, then the body);
    /// returns the frame ids handed over as complete, with their bytes.
    func feed(_ input: [UInt8], into reassembly: inout SleeveEngine.Reassembly) -> [(frameId: UInt32, bytes: [UInt8])] {
        var completed: [(UInt32, [UInt8])] = []
        var offset = 0
        while offset + 2 <= input.count {
            let length = Int(input[offset]) << 8 | Int(input[offset + 1])
            let body = Array(input[(offset + 2)..<min(input.count, offset + 2 + length)])
            offset += 2 + length
            body.withUnsafeBytes { p in
                guard let piece = FragmentHeader.load(p.baseAddress!, bodyLength: body.count),
                      let slot = reassembly.add(piece, chunk: p.baseAddress! + FragmentHeader.size, length: body.count - FragmentHeader.size) else { return }
                let frame = reassembly.buffer + slot * SleeveEngine.Reassembly.slotSize + VirtioNetHeader.size
                completed.append((piece.frameId, Array(UnsafeRawBufferPointer(start: frame, count: Int(piece.totalLength)))))
            }
        }
        return completed
    }

    /// Frame 7 (two pieces of 1000 + 500 bytes of 0x11) completes; frame 8's pieces say chunk
    /// 100 and then chunk 1000: together they cover 0–100 and 1000–1500 only, and once handed
    /// over the bytes between were frame 7's. The second piece is dropped; nothing is handed over.
    func testPiecesThatDisagreeOnTheChunkSizeAreNotReassembled() throws {
        var reassembly = SleeveEngine.Reassembly()
        let completed = feed(try FuzzRegressions.input("fragment", "pieces-disagree-on-chunk-size"), into: &reassembly)
        XCTAssertEqual(completed.map(\.frameId), [7])
        XCTAssertEqual(completed.first?.bytes, [UInt8](repeating: 0x11, count: 1500))
    }

    func testPiecesInAnyOrderCompleteTheFrame() {
        let frame = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let chunk = 1200
        let pieces = (0..<3).map { index -> [UInt8] in
            var header = [UInt8](repeating: 0, count: FragmentHeader.size)
            header.withUnsafeMutableBytes {
                FragmentHeader(source: 1, destination: 2, frameId: 5, index: UInt16(index), count: 3, chunkSize: UInt16(chunk),
                               totalLength: UInt32(frame.count), virtio: VirtioNetHeader()).store($0.baseAddress!)
            }
            return header + frame[(index * chunk)..<min(frame.count, (index + 1) * chunk)]
        }
        let input = [pieces[2], pieces[0], pieces[0], pieces[1]].flatMap { [UInt8($0.count >> 8), UInt8($0.count & 0xFF)] + $0 }
        var reassembly = SleeveEngine.Reassembly()
        let completed = feed(input, into: &reassembly)
        XCTAssertEqual(completed.map(\.frameId), [5], "the repeated piece is ignored, the frame completes once")
        XCTAssertEqual(completed.first?.bytes, frame)
    }
}
