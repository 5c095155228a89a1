// Which peer owns a remote MAC address, learned from frames that arrive over sleeve or fastdp.
import Synchronization

public final class MACTable: Sendable {
    /// Beyond this many entries the table starts over rather than grow without bound (a flood
    /// of forged source MACs costs relearning, never memory).
    static let capacity = 65536
    private let entries = Mutex<[UInt64: UInt16]>([:])

    public init() {}

    @inline(__always)
    static func key(_ p: UnsafeRawPointer) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<6 { v = (v << 8) | UInt64(p.load(fromByteOffset: i, as: UInt8.self)) }
        return v
    }

    @inline(__always)
    func lookup(_ mac: UInt64) -> UInt16? { entries.withLock { $0[mac] } }

    /// The owners of a frame's destination and source MACs (at `frame` and `frame + 6`), under
    /// one lock: the TAP thread needs both for every frame while a fast datapath is attached.
    @inline(__always)
    func owners(ofFrame frame: UnsafeRawPointer) -> (destination: UInt16?, source: UInt16?) {
        let destination = Self.key(frame), source = Self.key(frame + 6)
        return entries.withLock { ($0[destination], $0[source]) }
    }

    /// Returns whether the MAC is new or moved to another peer.
    @inline(__always) @discardableResult
    func learn(_ mac: UInt64, peer: UInt16) -> Bool {
        entries.withLock { table in
            if table[mac] == peer { return false }
            if table.count >= Self.capacity { table.removeAll(keepingCapacity: true) }
            table[mac] = peer
            return true
        }
    }

    /// Forgets the MACs of peers that are gone or whose short id changed.
    public func purge(keeping live: Set<UInt16>) {
        entries.withLock { table in table = table.filter { live.contains($0.value) } }
    }
}
