// `weft status topology`: who is linked to whom across the mesh, built from the gossiped topology
// (each router's own list of connections), and its Graphviz rendering. The gossip carries, per
// connection, whether it is established and the overlay MTU its reporter measured; it does not
// carry mode or encryption, so those are filled in for this router's own links only, from its
// connection status (docs/operations.md, "The mesh topology").
import WeftWire

/// One router of the mesh as the topology shows it.
public struct TopologyPeer: Codable, Sendable, Equatable {
    public var name: String
    public var nickname: String
    public var isSelf: Bool
    public var reachable: Bool

    public init(name: String, nickname: String, isSelf: Bool, reachable: Bool) {
        self.name = name
        self.nickname = nickname
        self.isSelf = isSelf
        self.reachable = reachable
    }
}

/// One link between two routers, each end's report merged.
public struct TopologyLink: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Both ends report it established.
        case established
        /// One end reports it established, the other not (yet, or no longer, or its report has
        /// not arrived): a link being made or torn down.
        case oneSided = "one-sided"
        /// Reported, but established at neither end: a handshake under way.
        case connecting
    }

    /// The two ends, `a` < `b` by name.
    public var a: String
    public var b: String
    public var state: State
    /// The smaller of the overlay MTUs the two ends measured over it; null before either did.
    public var mtu: Int?
    /// `sleeve` or `fastdp`, whether it is encrypted, its cipher: for this router's own links
    /// only (the gossip carries none of them); null for links between other routers.
    public var mode: String?
    public var encrypted: Bool?
    public var cipher: String?

    public init(a: String, b: String, state: State, mtu: Int?, mode: String? = nil, encrypted: Bool? = nil, cipher: String? = nil) {
        self.a = a
        self.b = b
        self.state = state
        self.mtu = mtu
        self.mode = mode
        self.encrypted = encrypted
        self.cipher = cipher
    }
}

public struct TopologyStatus: Codable, Sendable, Equatable {
    public var peers: [TopologyPeer]
    public var links: [TopologyLink]

    public init(peers: [TopologyPeer], links: [TopologyLink]) {
        self.peers = peers
        self.links = links
    }

    /// The mesh from every router's gossiped entry, with this router's own established
    /// connections (`own`) filling in mode, encryption and cipher of its links.
    public static func build(selfName: PeerName, entries: [PeerEntry], reachable: (PeerName) -> Bool,
                             own: [ConnectionStatus]) -> TopologyStatus {
        let peers = entries.sorted { $0.name < $1.name }.map {
            TopologyPeer(name: $0.name.description, nickname: $0.nickname, isSelf: $0.name == selfName,
                         reachable: $0.name == selfName || reachable($0.name))
        }
        struct Ends: Hashable { var a: PeerName, b: PeerName }
        var reports: [Ends: [ConnectionEntry]] = [:]
        for entry in entries {
            for connection in entry.connections where connection.remote != entry.name {
                let ends = entry.name < connection.remote ? Ends(a: entry.name, b: connection.remote) : Ends(a: connection.remote, b: entry.name)
                reports[ends, default: []].append(connection)
            }
        }
        let links = reports.sorted { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }.map { ends, reported in
            let establishedBy = reported.filter(\.established).count
            let state: TopologyLink.State = establishedBy >= 2 ? .established : (establishedBy == 1 ? .oneSided : .connecting)
            var link = TopologyLink(a: ends.a.description, b: ends.b.description, state: state, mtu: reported.compactMap(\.mtu).min())
            if ends.a == selfName || ends.b == selfName {
                let other = (ends.a == selfName ? ends.b : ends.a).description
                if let connection = own.first(where: { $0.peer == other && $0.state == .established }) {
                    link.mode = connection.mode
                    link.encrypted = connection.encrypted
                    link.cipher = connection.cipher
                }
            }
            return link
        }
        return TopologyStatus(peers: peers, links: links)
    }

    /// The mesh as a Graphviz graph: a node per router (labelled nickname and name, this one
    /// bold, unreachable ones grey), an edge per link labelled with what is known of it; links
    /// not established both ways are dashed.
    public func dot() -> String {
        var lines = ["graph weft {", "  node [shape=box];"]
        for peer in peers {
            var attributes = ["label=\(Self.quoted("\(peer.nickname)\n\(peer.name)"))"]
            if peer.isSelf { attributes.append("style=bold") }
            if !peer.reachable { attributes.append("color=gray") }
            lines.append("  \(Self.quoted(peer.name)) [\(attributes.joined(separator: ", "))];")
        }
        for link in links {
            var attributes = ["label=\(Self.quoted(link.summary))"]
            if link.state != .established { attributes.append("style=dashed") }
            lines.append("  \(Self.quoted(link.a)) -- \(Self.quoted(link.b)) [\(attributes.joined(separator: ", "))];")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }

    /// A DOT string literal: quotes and backslashes escaped, a newline as DOT's centred line break.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for character in text {
            switch character {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": continue
            default: out.append(character)
            }
        }
        return out + "\""
    }
}

extension TopologyLink {
    /// What is known of the link in a few words: "fastdp, clear, mtu 1420" for an own link,
    /// "mtu 1420" for another; the state first when it is not established.
    public var summary: String {
        var parts: [String] = []
        if state != .established { parts.append(state.rawValue) }
        if let mode { parts.append(mode) }
        if let encrypted { parts.append(encrypted ? "encrypted" : "clear") }
        if let mtu { parts.append("mtu \(mtu)") }
        return parts.joined(separator: ", ")
    }
}
