// Whether a connection's data plane answers heartbeats: the rule that takes a connection out of
// the forwarding routes while its gossip link lives, and puts it back (docs/protocol.md §4.1).
// Pure: the caller reads the clocks.

public enum DataPlaneHealth {
    /// Heartbeats leave every second; a data plane with no answer for longer than this (three
    /// heartbeats lost in a row) is down. Status reports the same silence (`weft status connections`).
    public static let silenceLimit = 3.0

    /// Whether the data plane of a connection is down: no sleeve heartbeat answer for more than
    /// `silenceLimit` seconds, or none at all although the connection has been up that long.
    /// `secondsSinceAnswer` is nil before the first answer; `secondsUp` is the connection's age.
    /// The first answer after a silence brings it back. A connection on fastdp is never down:
    /// that mode holds only while VXLAN heartbeats prove both directions (docs/protocol.md §6),
    /// so its traffic flows whatever the sleeve's heartbeats say, and it goes on hold (back to
    /// sleeve, and to this rule) within a second of that proof lapsing.
    public static func isDown(secondsSinceAnswer: Double?, secondsUp: Double, onFastdp: Bool) -> Bool {
        !onFastdp && (secondsSinceAnswer ?? secondsUp) > silenceLimit
    }
}
