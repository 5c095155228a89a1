// Heartbeats and path-MTU probes, sent by the control plane to every directly connected peer;
// their answers arrive on the UDP thread (SleeveEngine+RX.swift).
import Foundation
import WeftWire

extension SleeveEngine {
    /// Sends one heartbeat to every directly connected peer. Called by the control plane.
    public func sendHeartbeats() {
        let table = forwarding.current
        let now = Self.monotonicNanos()
        heartbeatBuffer.withLock { buffer in
            buffer.withUnsafeMutableBytes { raw in
                let p = raw.baseAddress!
                for case let session? in table.sessions {
                    (p + Sleeve.headerSize).storeBytes(of: now.bigEndian, as: Int64.self)
                    let length = finish(p, bodyLength: 8, kind: .heartbeat, session: session, own: table.ownShortId)
                    send(p, length, to: session)
                }
            }
        }
    }

    /// Underlay MTUs worth trying (common tunnel and link sizes), largest first.
    static let probeMTUs = [9000, 4000, 1500, 1492, 1480, 1460, 1454, 1450, 1440, 1420, 1400, 1380, 1360, 1350, 1300, 1280, 1200, 1000, 576]

    /// The UDP payload size of every candidate towards `session` (real sizes, never larger
    /// than our own underlay allows, with the outer headers of the session's family).
    public func probeLadder(for session: SleeveSession) -> [Int] {
        let limit = session.linkPayload
        let headers = session.remoteAddress.family.udpHeaders
        return Set([limit] + Self.probeMTUs.map { $0 - headers }).filter { $0 <= limit && $0 >= 64 }.sorted(by: >)
    }

    /// Sends `session` one DF probe of each UDP payload size of `sizes` (one probing round,
    /// WeftMesh ProbeSchedule). The answers arrive on the UDP thread; the control plane takes
    /// the result a moment later (`SleeveSession.finishProbeRound`).
    public func sendProbes(to session: SleeveSession, sizes: [Int]) {
        let own = forwarding.current.ownShortId
        probeBuffer.withLock { buffer in
            buffer.withUnsafeMutableBytes { raw in
                let p = raw.baseAddress!
                for size in sizes {
                    let body = size - Sleeve.headerSize - (session.encrypted ? Sleeve.tagSize : 0)
                    guard body >= 2, size <= raw.count else { continue }
                    (p + Sleeve.headerSize).initializeMemory(as: UInt8.self, repeating: 0, count: body)
                    let length = finish(p, bodyLength: body, kind: .pmtuProbe, session: session, own: own)
                    send(p, length, to: session)
                }
            }
        }
    }
}
