// Frames the fast datapath hands to sleeve (Forwarding.handToSleeve): from its miss thread, for
// a next hop that is not on fastdp. The other way, the TAP thread hands the fast datapath frames
// for a peer on fastdp that the bridge still sends to the TAP (SleeveEngine+TX.swift, `route`).
import Foundation
import WeftWire

extension SleeveEngine: FrameHandoff {
    /// Sends one frame from `source` to `destination` through neighbour `session`, from a thread
    /// other than the TAP thread (a per-packet path, used only until flows and bridge learning
    /// settle). A frame too big for the route is cut or answered as on the TAP thread
    /// (docs/protocol.md §5.4). `frame` is the caller's, read only during the call.
    func handOff(_ frame: UnsafeRawPointer, length: Int, source: UInt16, destination: UInt16, via session: SleeveSession) -> Bool {
        let limit = forwarding.current.payloadLimit(to: destination, via: session)
        if Sleeve.headerSize + Sleeve.frameHeaderSize + length + Sleeve.tagSize <= limit {
            sendHandoff(frame, length, source: source, destination: destination, via: session)
            return true
        }
        let mtu = Sleeve.overlayMTU(payload: limit)
        let pieces = IPv4Fragments.count(frame: frame, length: length, mtu: mtu)
        handoffScratch.withLock { scratch in
            scratch.withUnsafeMutableBytes { out in
                let p = out.baseAddress!
                for k in 0..<pieces {
                    let n = IPv4Fragments.write(frame: frame, length: length, mtu: mtu, index: k, into: p)
                    sendHandoff(UnsafeRawPointer(p), n, source: source, destination: destination, via: session)
                }
                if pieces == 0 {
                    p.initializeMemory(as: UInt8.self, repeating: 0, count: VirtioNetHeader.size)
                    tooBig(frame, length, limit: limit, session: session, scratch: p)
                }
            }
        }
        return true
    }

    /// Seals and sends one frame that fits, in the hand-off buffer (its lock serialises callers).
    private func sendHandoff(_ frame: UnsafeRawPointer, _ frameLength: Int, source: UInt16, destination: UInt16, via session: SleeveSession) {
        let body = Sleeve.frameHeaderSize + frameLength
        handoffBuffer.withLock { buffer in
            buffer.withUnsafeMutableBytes { raw in
                guard Sleeve.headerSize + body + Sleeve.tagSize <= raw.count else { return }
                let p = raw.baseAddress!
                Sleeve.writeFrameHeader(length: frameLength, source: source, destination: destination, to: p + Sleeve.headerSize)
                (p + Sleeve.headerSize + Sleeve.frameHeaderSize).copyMemory(from: frame, byteCount: frameLength)
                session.counters.frameSent(bytes: frameLength)
                let length = finish(p, bodyLength: body, kind: .data, session: session, own: forwarding.current.ownShortId)
                send(p, length, to: session)
            }
        }
    }
}
