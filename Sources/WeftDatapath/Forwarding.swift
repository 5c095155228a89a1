// What the two datapaths sharing the bridge both read: the forwarding table the control plane
// installs, the MAC table both learn into, and the hand-off of frames between them. The router
// owns one and gives it to both engines, so neither engine holds the other: each attaches itself
// here while it runs (and detaches when it stops, which also breaks the reference cycle).
import Synchronization

/// A datapath that sends frames the other datapath has but cannot send itself.
protocol FrameHandoff: AnyObject, Sendable {
    /// Sends one `length`-byte Ethernet frame from `source` to `destination` through neighbour
    /// `session`, from a thread other than this datapath's own; false when it could not.
    func handOff(_ frame: UnsafeRawPointer, length: Int, source: UInt16, destination: UInt16, via session: SleeveSession) -> Bool
}

public final class Forwarding: Sendable {
    private let table = Mutex<ForwardingTable>(.empty)
    public let macs = MACTable()
    /// Set while a fast datapath shares the bridge: frames of remote peers can then reach the TAP.
    let fastdpAttached = Atomic<Bool>(false)
    private let fastdp = Mutex<(any FrameHandoff)?>(nil)
    private let sleeve = Mutex<(any FrameHandoff)?>(nil)

    public init() {}

    public func install(_ newTable: ForwardingTable) {
        table.withLock { $0 = newTable }
    }

    var current: ForwardingTable { table.withLock { $0 } }

    /// Joins (or, with nil, leaves) the fast datapath that shares the bridge.
    func attach(fastdp engine: (any FrameHandoff)?) {
        fastdp.withLock { $0 = engine }
        fastdpAttached.store(engine != nil, ordering: .relaxed)
    }

    /// Joins (or, with nil, leaves) the sleeve engine.
    func attach(sleeve engine: (any FrameHandoff)?) {
        sleeve.withLock { $0 = engine }
    }

    /// A frame for a peer on fastdp that the bridge gave sleeve (TAP thread).
    func handToFastdp(_ frame: UnsafeRawPointer, length: Int, source: UInt16, destination: UInt16, via session: SleeveSession) -> Bool {
        fastdp.withLock { $0?.handOff(frame, length: length, source: source, destination: destination, via: session) } ?? false
    }

    /// A frame whose next hop is not on fastdp, from the fast datapath's miss thread.
    func handToSleeve(_ frame: UnsafeRawPointer, length: Int, source: UInt16, destination: UInt16, via session: SleeveSession) -> Bool {
        sleeve.withLock { $0?.handOff(frame, length: length, source: source, destination: destination, via: session) } ?? false
    }
}
