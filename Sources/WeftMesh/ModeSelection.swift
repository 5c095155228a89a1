// Which overlay carries a connection (docs/design.md §5): a pure decision from what both ends said in
// the handshake and what the fast-datapath heartbeats show. The router applies it per link.

public enum OverlayMode: String, Sendable, Codable {
    case sleeve, fastdp

    /// The mode a link would use if everything worked: encryption is never given up for speed,
    /// so an encrypted link prefers sleeve, any other fastdp.
    public static func preferred(encrypted: Bool) -> OverlayMode { encrypted ? .sleeve : .fastdp }
}

public struct ModeDecision: Equatable, Sendable {
    public var mode: OverlayMode
    public var encrypted: Bool
    /// The mode this link would use if everything worked.
    public var preferred: OverlayMode
    /// Why the link is not on its preferred mode; nil when it is.
    public var reason: String?
}

public enum ModeSelection {
    /// What the fast-datapath heartbeats of a link show.
    public enum Heartbeats: Equatable, Sendable {
        case ok
        /// None answered yet since the link came up.
        case waiting
        /// None answered for this many seconds.
        case lost(seconds: Int)
    }

    /// - Parameters:
    ///   - localFastdp: nil when this router can use fastdp, else why not
    ///     ("kernel has no openvswitch module", "disabled by --no-fastdp").
    ///   - remoteFastdp: whether the peer said in its hello that it can.
    public static func decide(passwordSet: Bool, trusted: Bool, localFastdp: String?, remoteFastdp: Bool,
                              heartbeats: Heartbeats) -> ModeDecision {
        // Encryption is never given up for speed: an untrusted link with a password is sleeve.
        if LinkPolicy.encrypted(passwordSet: passwordSet, trusted: trusted) {
            return ModeDecision(mode: .sleeve, encrypted: true, preferred: .preferred(encrypted: true), reason: nil)
        }
        func sleeve(_ why: String) -> ModeDecision {
            ModeDecision(mode: .sleeve, encrypted: false, preferred: .preferred(encrypted: false), reason: why)
        }
        if let localFastdp { return sleeve("fastdp unavailable: \(localFastdp)") }
        if !remoteFastdp { return sleeve("fastdp unavailable on the peer") }
        switch heartbeats {
        case .ok:
            return ModeDecision(mode: .fastdp, encrypted: false, preferred: .preferred(encrypted: false), reason: nil)
        case .waiting:
            return sleeve("fastdp starting: waiting for the first heartbeat")
        case .lost(let seconds):
            return sleeve("fastdp on hold: no heartbeat for \(seconds) s")
        }
    }
}
