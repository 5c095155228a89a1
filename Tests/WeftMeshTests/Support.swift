import WeftTestSupport
import XCTest
import WeftWire
@testable import WeftMesh

/// `02:00:00:00:00:xx`: names whose order is the order of `i`.
func peer(_ i: Int) -> PeerName { PeerName(value: 0x02_00_00_00_00_00 + UInt64(i)) }

func address(_ n: PeerName) -> String { "10.0.\(n.value >> 8 & 0xFF).\(n.value & 0xFF):6783" }

func entry(_ n: PeerName, uid: UInt64 = 1, version: UInt64 = 1, shortId: UInt16? = nil,
           established: [PeerName] = [], pending: [PeerName] = []) -> PeerEntry {
    PeerEntry(name: n, nickname: "host-\(n.value & 0xFF)", uid: uid, version: version,
              shortId: shortId ?? Topology.initialShortId(for: n),
              connections: established.map { ConnectionEntry(remote: $0, address: address($0), established: true, outbound: n < $0) }
                  + pending.map { ConnectionEntry(remote: $0, address: address($0), established: false, outbound: true) })
}

/// Entries in which every peer lists each of its neighbours in `edges` as established.
func entries(nodes: [PeerName], edges: [(PeerName, PeerName)]) -> [PeerName: PeerEntry] {
    var neighbours: [PeerName: [PeerName]] = [:]
    for n in nodes { neighbours[n] = [] }
    for (a, b) in edges {
        neighbours[a, default: []].append(b)
        neighbours[b, default: []].append(a)
    }
    var result: [PeerName: PeerEntry] = [:]
    for (n, list) in neighbours { result[n] = entry(n, established: list) }
    return result
}

/// The topology `local` holds once it knows every entry.
func topology(of local: PeerName, _ all: [PeerName: PeerEntry]) -> Topology {
    var t = Topology(own: all[local]!)
    _ = t.merge(TopologyUpdate(peers: Array(all.values)))
    return t
}

/// A random connected graph: a random spanning tree plus `extra` random edges.
func randomConnectedGraph<G: RandomNumberGenerator>(_ nodes: [PeerName], extra: Int, using g: inout G) -> [(PeerName, PeerName)] {
    var edges: [(PeerName, PeerName)] = []
    var seen = Set<[UInt64]>()
    func add(_ a: PeerName, _ b: PeerName) {
        guard a != b, seen.insert([min(a, b).value, max(a, b).value]).inserted else { return }
        edges.append((a, b))
    }
    let order = nodes.shuffled(using: &g)
    for i in 1..<order.count { add(order[i], order[Int.random(in: 0..<i, using: &g)]) }
    for _ in 0..<extra { add(nodes.randomElement(using: &g)!, nodes.randomElement(using: &g)!) }
    return edges
}
