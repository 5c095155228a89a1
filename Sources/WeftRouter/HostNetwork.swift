// The router's interfaces on its host (DESIGN §3): the `weft` bridge with a MAC fixed from the
// peer name, the router's TAP port on it, veth pairs into workloads, and host addresses on the
// bridge. Everything goes through rtnetlink (WeftNetlink); nothing shells out to `ip`.
import Foundation
import WeftNetlink
import WeftWire

/// One attached workload, as status shows it.
public struct Workload: Codable, Sendable, Equatable {
    public var namespace: String?
    public var pid: Int32?
    public var ifname: String
    public var hostIfname: String
    public var cidrs: [String]
}

/// Interface names Weft creates; `weft reset` removes exactly these.
public enum WeftInterfaces {
    public static let bridge = "weft"
    public static let tap = "weft-tap"
    /// Host ends of workload veth pairs: `weftv` + 8 hex digits.
    public static let workloadPrefix = "weftv"
}

/// Placeholder until host plumbing lands: the router runs without a data plane.
final class HostNetwork: @unchecked Sendable {
    init(peerName: PeerName, overlayMTU: Int) {}
}
