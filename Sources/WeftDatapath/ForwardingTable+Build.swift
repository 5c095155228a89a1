// The forwarding table from the gossip's view: which neighbour session serves each short id,
// the next hop and the route MTU to each destination, and the children of each source's
// broadcast tree. Pure: the router calls it whenever links or routes change.
import WeftMesh
import WeftWire

extension ForwardingTable {
    /// The table for `topology` and its `routes`, over the neighbour `sessions` (by peer name)
    /// and the route MTUs `pathMTU` (Routes.pathMTU). Peers without a short id in the topology,
    /// sessions of peers it does not list, and sources this router cannot reach are left out.
    public static func build(topology: Topology, routes: Routes, sessions: [PeerName: SleeveSession],
                             pathMTU: [PeerName: Int] = [:]) -> ForwardingTable {
        let shortIds = topology.peers.mapValues(\.shortId)
        var byShortId: [UInt16: SleeveSession] = [:]
        for (name, session) in sessions {
            if let id = shortIds[name] { byShortId[id] = session }
        }
        var nextHop: [UInt16: UInt16] = [:]
        for (destination, hop) in routes.unicast {
            if let d = shortIds[destination], let h = shortIds[hop] { nextHop[d] = h }
        }
        var routeMTU: [UInt16: Int] = [:]
        for (destination, mtu) in pathMTU {
            if let d = shortIds[destination] { routeMTU[d] = mtu }
        }
        var broadcast: [UInt16: [UInt16]] = [:]
        // One pass answers every source (Routes.broadcastNextHops(from:)).
        let sources = topology.peers.keys.filter(routes.isReachable)
        let children = routes.broadcastNextHops(from: sources)
        for source in sources {
            guard let s = shortIds[source] else { continue }
            broadcast[s] = (children[source] ?? []).compactMap { shortIds[$0] }
        }
        return ForwardingTable(ownShortId: topology.own.shortId, sessions: byShortId, nextHop: nextHop,
                               broadcast: broadcast, pathMTU: routeMTU)
    }
}
