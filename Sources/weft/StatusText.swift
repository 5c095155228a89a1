// Human-readable renderings of the status documents.
import WeftControl
import WeftRouter

enum StatusText {
    static func router(_ s: RouterStatus) -> String {
        let counts = ["established", "connecting", "retrying", "failed"].map { "\(s.connections[$0] ?? 0) \($0)" }.joined(separator: ", ")
        let encryption = s.encryption ? "enabled (password id \(s.pskId ?? "?"))" : "disabled (no password)"
        return [
            ("Name", "\(s.name) (\(s.nickname))"),
            ("Identity", s.identity ?? "none"),
            ("Port", "\(s.port)"),
            ("Overlay MTU", "\(s.overlayMTU)"),
            ("Encryption", encryption),
            ("Fast datapath", s.fastdp.available ? "available, \(s.fastdp.flows) flows" : "unavailable (\(s.fastdp.reason ?? "unknown"))"),
            ("Trusted subnets", s.trustedSubnets.isEmpty ? "none" : s.trustedSubnets.joined(separator: ", ")),
            ("Addresses", addresses(s.ipalloc)),
            ("Peers", "\(s.peers)"),
            ("Connections", counts),
            ("Uptime", "\(s.uptimeSeconds) s"),
            ("Identity pins", "\(s.pinnedIdentities) names pinned, \(s.pinConflicts.isEmpty ? "no" : String(s.pinConflicts.count)) conflicts"),
        ].map { label, value in String(repeating: " ", count: 16 - label.count) + label + ": " + value }.joined(separator: "\n")
            + s.pinConflicts.map { "\n" + pinConflict($0) }.joined()
    }

    /// One refused claim, on one line under the status (docs/operations.md).
    static func pinConflict(_ c: PinConflictStatus) -> String {
        let what: String
        switch c.reason {
        case "otherKey": what = "pinned to \(c.pinnedIdentity ?? "?"), claimed with \(c.offeredIdentity)"
        case "nameNotDerived": what = "claimed with \(c.offeredIdentity), a key that does not derive the name"
        case "revoked": what = "claimed with the revoked key \(c.offeredIdentity)"
        default: what = "\(c.reason), claimed with \(c.offeredIdentity)"
        }
        return "    pin conflict: \(c.name) \(what); refused \(c.count)× since \(c.firstSeen), first by \(c.source)"
    }

    private static func addresses(_ a: IPAllocSummary?) -> String {
        guard let a else { return "off (--ipalloc-range off)" }
        let share: String = a.seeded ? "\(a.range): \(a.used) used, \(a.free) free here" : "\(a.range): not divided yet"
        guard !a.refusedPools.isEmpty else { return share }
        let refused: String = a.refusedPools.keys.sorted().joined(separator: ", ")
        return share + "; not pooled with " + refused + " (weft ipam says why)"
    }

    static func peers(_ peers: [PeerStatus]) -> String {
        table(["NAME", "NICKNAME", "SHORT ID", "CONNECTIONS", "NEXT HOP", "PATH MTU"], peers.map {
            [$0.name + ($0.isSelf ? " (self)" : ""), $0.nickname, String($0.shortId), String($0.connections),
             $0.isSelf ? "-" : $0.revoked ? "revoked" : ($0.nextHop ?? "unreachable"), $0.pathMtu.map(String.init) ?? "-"]
        })
    }

    static func connections(_ connections: [ConnectionStatus]) -> String {
        table(["ADDRESS", "DIR", "STATE", "PEER", "MODE", "ENCRYPTED", "TRUSTED", "PASSWORD", "REASON"], connections.map {
            [$0.address, $0.direction.rawValue, $0.state.rawValue,
             peerLabel($0), $0.mode ?? "-",
             $0.encrypted ? "yes" : "no", $0.trusted ? "yes" : "no",
             ($0.pskId ?? "-") + ($0.activePskId.map { " (active: \($0))" } ?? ""), $0.reason ?? ""]
        })
    }

    /// The links as a table; mode and encryption as both ends report them (the lesser when they
    /// differ, and then what each says).
    static func topology(_ t: TopologyStatus) -> String {
        let label = Dictionary(uniqueKeysWithValues: t.peers.map { ($0.name, $0.nickname + ($0.isSelf ? " (self)" : "")) })
        let rows = table(["A", "B", "STATE", "MODE", "ENCRYPTED", "MTU", "NOTE"], t.links.map { link in
            [label[link.a] ?? link.a, label[link.b] ?? link.b, link.state.rawValue, link.mode ?? "-",
             link.encrypted.map { $0 ? "yes" : "no" } ?? "-", link.mtu.map(String.init) ?? "-",
             link.endsText(label: { label[$0] ?? $0 }) ?? ""]
        })
        return "\(t.peers.count) routers, \(t.links.count) links (mode and encryption as the ends report them; "
            + "the lesser when they differ)\n" + rows
    }

    static func ipam(_ s: IPAMStatus) -> String {
        let seed = s.seeded ? "divided (seed \(s.seed ?? "?"))" : "not divided yet (consensus of \(s.consensusSize))"
        var lines = ["Range \(s.range): \(seed)"]
        for (peer, why) in s.refusedPools.sorted(by: { $0.key < $1.key }) { lines.append("Not pooled with \(peer): \(why)") }
        lines.append(table(["NAME", "NICKNAME", "BLOCKS", "ADDRESSES", "USED", "FREE", "REACHABLE"], s.shares.map {
            [$0.name + ($0.isSelf ? " (self)" : ""), $0.nickname ?? "-", String($0.blocks), String($0.addresses),
             String($0.used), String($0.free), $0.reachable ? "yes" : "no (weft rmpeer frees its space)"]
        }))
        return lines.joined(separator: "\n")
    }

    static func peerLabel(_ c: ConnectionStatus) -> String {
        guard let peer = c.peer else { return "-" }
        return c.nickname.map { "\(peer) (\($0))" } ?? peer
    }

    /// `weft ps`: one line per workload; the namespace by name, or `pid N` when attached by pid.
    static func workloads(_ workloads: [Workload]) -> String {
        table(["WORKLOAD", "IFNAME", "HOST IFNAME", "MAC", "ADDRESSES"], workloads.map {
            [$0.namespace ?? $0.pid.map { "pid \($0)" } ?? "-", $0.ifname, $0.hostIfname, $0.mac ?? "-",
             $0.cidrs.isEmpty ? "-" : $0.cidrs.joined(separator: ",")]
        })
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
