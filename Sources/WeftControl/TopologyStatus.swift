// `weft status topology`: who is linked to whom across the mesh, built from the gossiped topology
// (each router's own list of connections), and its Graphviz rendering. Each end reports, per
// connection, whether it is established, the overlay MTU it measured, and its data plane's mode
// and encryption; the two ends' reports are merged into one link, this router's own end taken
// from its live connection status rather than its gossip (docs/operations.md, "The mesh topology").
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
    /// `fastdp`, `sleeve` or `none` (established, no data plane yet), and whether it is
    /// encrypted: the lesser of what the two ends report (`DataPlaneReport.Mode` order; clear
    /// when either end says clear), as a link is only as fast and as private as its weaker
    /// direction; `ends` says what each end reports when they differ. Null when neither end
    /// reported it (a router from before the report).
    public var mode: String?
    public var encrypted: Bool?
    /// The data cipher: for this router's own links only (the gossip does not carry it).
    public var cipher: String?
    /// What each end reports, when the two differ (a change on its way through the gossip, or
    /// ends that decided differently, such as one whose fastdp heartbeats stopped); else null.
    public var ends: [TopologyLinkEnd]?

    public init(a: String, b: String, state: State, mtu: Int?, mode: String? = nil, encrypted: Bool? = nil, cipher: String? = nil,
                ends: [TopologyLinkEnd]? = nil) {
        self.a = a
        self.b = b
        self.state = state
        self.mtu = mtu
        self.mode = mode
        self.encrypted = encrypted
        self.cipher = cipher
        self.ends = ends
    }
}

/// One end's report of a link's data plane.
public struct TopologyLinkEnd: Codable, Sendable, Equatable {
    public var peer: String
    public var mode: String
    public var encrypted: Bool

    public init(peer: String, mode: String, encrypted: Bool) {
        self.peer = peer
        self.mode = mode
        self.encrypted = encrypted
    }
}

public struct TopologyStatus: Codable, Sendable, Equatable {
    public var peers: [TopologyPeer]
    public var links: [TopologyLink]

    public init(peers: [TopologyPeer], links: [TopologyLink]) {
        self.peers = peers
        self.links = links
    }

    /// The mesh from every router's gossiped entry. This router's own end of its links is its
    /// live connection status (`own`, established ones), which also gives the cipher; the gossip
    /// serves where there is none.
    public static func build(selfName: PeerName, entries: [PeerEntry], reachable: (PeerName) -> Bool,
                             own: [ConnectionStatus]) -> TopologyStatus {
        let peers = entries.sorted { $0.name < $1.name }.map {
            TopologyPeer(name: $0.name.description, nickname: $0.nickname, isSelf: $0.name == selfName,
                         reachable: $0.name == selfName || reachable($0.name))
        }
        struct Ends: Hashable { var a: PeerName, b: PeerName }
        var reports: [Ends: [(by: PeerName, connection: ConnectionEntry)]] = [:]
        for entry in entries {
            for connection in entry.connections where connection.remote != entry.name {
                let ends = entry.name < connection.remote ? Ends(a: entry.name, b: connection.remote) : Ends(a: connection.remote, b: entry.name)
                reports[ends, default: []].append((entry.name, connection))
            }
        }
        let live = Dictionary(own.filter { $0.state == .established }.compactMap { c in c.peer.map { ($0, c) } }, uniquingKeysWith: { first, _ in first })
        let links = reports.sorted { ($0.key.a, $0.key.b) < ($1.key.a, $1.key.b) }.map { ends, reported in
            let establishedBy = reported.filter(\.connection.established).count
            let state: TopologyLink.State = establishedBy >= 2 ? .established : (establishedBy == 1 ? .oneSided : .connecting)
            var link = TopologyLink(a: ends.a.description, b: ends.b.description, state: state, mtu: reported.compactMap(\.connection.mtu).min())
            let other = ends.a == selfName ? ends.b : (ends.b == selfName ? ends.a : nil)
            let connection = other.flatMap { live[$0.description] }
            let dataPlane: [TopologyLinkEnd] = reported.compactMap { by, entry in
                if by == selfName, let connection {
                    return TopologyLinkEnd(peer: by.description, mode: connection.mode ?? DataPlaneReport.Mode.noDataPlane.rawValue,
                                           encrypted: connection.encrypted)
                }
                return entry.dataPlane.map { TopologyLinkEnd(peer: by.description, mode: $0.mode.rawValue, encrypted: $0.encrypted) }
            }
            link.cipher = connection?.cipher
            link.merge(dataPlane)
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
    /// Mode and encryption from the ends' reports: the lesser mode (in `DataPlaneReport.Mode`'s
    /// order, none < sleeve < fastdp), encrypted only when every report says so, and the reports
    /// themselves in `ends` when they differ. Nothing reported leaves all three null.
    mutating func merge(_ reports: [TopologyLinkEnd]) {
        let order = DataPlaneReport.Mode.allCases.map(\.rawValue)
        guard let least = reports.min(by: { (order.firstIndex(of: $0.mode) ?? 0) < (order.firstIndex(of: $1.mode) ?? 0) }) else { return }
        mode = least.mode
        encrypted = reports.allSatisfy(\.encrypted)
        let differ = reports.contains { $0.mode != least.mode || $0.encrypted != reports[0].encrypted }
        ends = differ ? reports.sorted { $0.peer < $1.peer } : nil
    }

    /// What is known of the link in a few words: "fastdp, clear, mtu 1420"; the state first when
    /// it is not established, and each end's report when they differ.
    public var summary: String {
        var parts: [String] = []
        if state != .established { parts.append(state.rawValue) }
        if let mode { parts.append(mode) }
        if let encrypted { parts.append(Self.encryptionText(encrypted)) }
        if let mtu { parts.append("mtu \(mtu)") }
        if let differ = endsText(label: { $0 }) { parts.append(differ) }
        return parts.joined(separator: ", ")
    }

    /// "ends differ: alpha fastdp clear, beta sleeve clear" when the ends' reports differ, each
    /// end named by `label`; nil when they agree.
    public func endsText(label: (String) -> String) -> String? {
        guard let ends else { return nil }
        return "ends differ: " + ends.map { "\(label($0.peer)) \($0.mode) \(Self.encryptionText($0.encrypted))" }.joined(separator: ", ")
    }

    static func encryptionText(_ encrypted: Bool) -> String { encrypted ? "encrypted" : "clear" }
}
