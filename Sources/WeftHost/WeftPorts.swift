// The gossip port's default, here so `weft doctor` (WeftHost) and RouterConfig share one number.
public enum WeftPorts {
    /// TCP for gossip links and UDP for sleeve; the fast datapath's VXLAN is on the next port.
    public static let gossip = 6783
}
