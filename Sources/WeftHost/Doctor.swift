// `weft doctor`, the pure core: each check is a function from facts about the host (and the
// running router, when one answers) to a verdict. Nothing here reads the host; DoctorHost.swift
// gathers the facts. Unit-tested with facts built in memory.
import Foundation
import WeftControl
import WeftDatapath
import WeftMesh
import WeftWire

/// One line of the report; `weft doctor --json` prints an array of these.
public struct DoctorCheck: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable, Comparable {
        case ok, warn, fail
        public static func < (a: Status, b: Status) -> Bool { a.rank < b.rank }
        var rank: Int { self == .ok ? 0 : self == .warn ? 1 : 2 }
    }

    public var check: String
    public var status: Status
    /// What the check saw, with the numbers it used.
    public var detail: String
    /// What to do about it; null when the status is ok.
    public var fix: String?

    public init(check: String, status: Status, detail: String, fix: String? = nil) {
        self.check = check
        self.status = status
        self.detail = detail
        self.fix = status == .ok ? nil : fix
    }

    enum CodingKeys: String, CodingKey { case check, status, detail, fix }

    /// `fix` is written as null when absent, as in the status documents.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(check, forKey: .check)
        try c.encode(status, forKey: .status)
        try c.encode(detail, forKey: .detail)
        try c.encode(fix, forKey: .fix)
    }
}

/// Everything the checks look at.
public struct DoctorFacts: Sendable {
    public struct Interface: Sendable, Equatable {
        public var name: String
        /// rtnetlink kind: "bridge", "veth", "bond", "vlan", …; nil for physical NICs and lo.
        public var kind: String?
        public var mtu: Int
        public var mac: [UInt8]
        public var isUp: Bool
        /// Name of the master (bridge or bond), if any.
        public var master: String?
        /// /sys/class/net/NAME/addr_assign_type: 0 permanent, 1 random, 2 stolen, 3 set.
        public var addrAssignType: Int?
        public var addresses: [String]
        /// The devices under this one (/sys/class/net/NAME/lower_*): a VLAN's bond, say.
        public var lowers: [String]
        /// First word of /sys/class/net/NAME/bonding/mode ("balance-rr"), for bonds.
        public var bondMode: String?
        /// Kernel driver (/sys/class/net/NAME/device/driver): "virtio_net", …
        public var driver: String?
        /// UDP fragmentation offload, when the kernel still reports it.
        public var udpFragmentationOffload: Bool?

        public init(name: String, kind: String? = nil, mtu: Int = 1500, mac: [UInt8] = [], isUp: Bool = true,
                    master: String? = nil, addrAssignType: Int? = nil, addresses: [String] = [], lowers: [String] = [],
                    bondMode: String? = nil, driver: String? = nil, udpFragmentationOffload: Bool? = nil) {
            self.name = name
            self.kind = kind
            self.mtu = mtu
            self.mac = mac
            self.isUp = isUp
            self.master = master
            self.addrAssignType = addrAssignType
            self.addresses = addresses
            self.lowers = lowers
            self.bondMode = bondMode
            self.driver = driver
            self.udpFragmentationOffload = udpFragmentationOffload
        }
    }

    /// /proc/net/snmp `Ip:` counters at the start and the end of a sample.
    public struct IPCounterSample: Sendable {
        public var before: [String: Int]
        public var after: [String: Int]
        public var seconds: Double
        public init(before: [String: Int], after: [String: Int], seconds: Double) {
            self.before = before
            self.after = after
            self.seconds = seconds
        }
    }

    /// Rule listings of one firewall tool, one rule per line.
    public struct FirewallListing: Sendable {
        public var tool: String
        public var lines: [String]
        public init(tool: String, lines: [String]) {
            self.tool = tool
            self.lines = lines
        }
    }

    public var interfaces: [Interface] = []
    /// uname -r.
    public var kernelRelease = ""
    /// /proc/sys/net/bridge/bridge-nf-call-*: name → value; nil when br_netfilter is absent.
    public var bridgeNetfilter: [String: Int]?
    public var ipCounters: IPCounterSample?
    public var openvswitchPresent = false
    /// Local UDP ports with a socket bound (/proc/net/udp, udp6): kernel VXLAN sockets too.
    public var udpPortsBound: Set<Int> = []
    /// nil: no firewall tool could be run.
    public var firewall: [FirewallListing]?
    /// Firewall tools that are installed but could not list their rules (not root, say).
    public var firewallUnreadable: [String] = []
    /// The router that answered on the control socket, if any.
    public var router: RouterStatus?
    public var connections: [ConnectionStatus] = []
    /// The router's peers (`weft status peers`), for the path MTU of relayed routes.
    public var peers: [PeerStatus] = []
    /// Why no router was asked or none answered.
    public var routerProblem: String?

    public init() {}

    func interface(_ name: String) -> Interface? { interfaces.first { $0.name == name } }
}

public enum Doctor {
    /// The checks in the order of the report.
    public static let checks: [(name: String, run: @Sendable (DoctorFacts) -> DoctorCheck)] = [
        ("mtu", mtu), ("offload", offload), ("bridge-mac", bridgeMAC), ("bridge-netfilter", bridgeNetfilter),
        ("bonding", bonding), ("fastdp", fastdp), ("fragmentation", fragmentation), ("firewall", firewall),
    ]

    public static func run(_ facts: DoctorFacts) -> [DoctorCheck] { checks.map { $0.run(facts) } }

    /// The text report: `status  check  detail`, and the fix indented below when not ok.
    public static func text(_ checks: [DoctorCheck]) -> String {
        let width = checks.map(\.check.count).max() ?? 0
        return checks.map { c in
            var line = c.status.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)
                + c.check.padding(toLength: width + 2, withPad: " ", startingAt: 0) + c.detail
            if let fix = c.fix, !fix.isEmpty { line += "\n      fix: " + fix }
            return line
        }.joined(separator: "\n")
    }

    /// The UDP port of the fastdp VXLAN vport of the router that answers (or would run) here.
    static func fastdpPort(_ facts: DoctorFacts) -> Int {
        FastdpWire.vxlanPort(routerPort: facts.router?.port ?? WeftPorts.gossip)
    }

    /// The interfaces that can carry the underlay, by the router's own rule.
    static func underlay(_ facts: DoctorFacts) -> [DoctorFacts.Interface] {
        facts.interfaces.filter { link in HostNetwork.carriesUnderlay(name: link.name, isUp: link.isUp, addresses: { link.addresses }) }
    }

    static func label(_ c: ConnectionStatus) -> String {
        let name = c.peer ?? c.address
        return c.nickname.map { "\(name) (\($0))" } ?? name
    }

    // MARK: 1. mtu

    static func mtu(_ facts: DoctorFacts) -> DoctorCheck {
        let links = underlay(facts)
        let lower = links.min { $0.mtu < $1.mtu }
        let underlayMTU = lower?.mtu ?? HostNetwork.assumedUnderlayMTU
        // The family whose header must fit: that of the router's links when it has any (one IPv6
        // link is enough), else the router's own rule for the host (HostNetwork.underlayFamily).
        let linkFamilies = facts.connections.compactMap { $0.underlay.flatMap(UnderlayFamily.init(rawValue:)) }
        let family = linkFamilies.isEmpty ? HostNetwork.underlayFamily(addresses: links.flatMap(\.addresses))
            : (linkFamilies.contains(.ipv6) ? .ipv6 : .ipv4)
        var parts = [lower.map { "underlay \($0.name) MTU \($0.mtu)" } ?? "no underlay interface found (up, with a routable address); assuming MTU \(underlayMTU)"]
        if family == .ipv6 { parts.append("IPv6 underlay: 40-byte outer header") }
        let overlay: Int
        if let router = facts.router, router.overlayMTU > 0 {
            overlay = router.overlayMTU
            parts.append("router overlay MTU \(overlay)")
        } else if let bridge = facts.interface(WeftInterfaces.bridge) {
            overlay = bridge.mtu
            parts.append("no router answers; bridge \(bridge.name) MTU \(overlay)")
        } else {
            let derived = Sleeve.overlayMTU(underlayMTU: underlayMTU, family: family)
            return DoctorCheck(check: "mtu", status: .ok, detail: (parts + [
                "no router and no \(WeftInterfaces.bridge) bridge; a router started here would use overlay \(underlayMTU) - \(family.sleeveOverhead) = \(derived)",
            ]).joined(separator: "; "))
        }
        var status = DoctorCheck.Status.ok
        var fixes: [String] = []
        for (mode, overhead) in [("sleeve", family.sleeveOverhead), ("fastdp", family.fastdpOverhead)] {
            let needed = overlay + overhead
            let fits = needed <= underlayMTU
            parts.append("\(mode) needs overlay \(overlay) + \(overhead) = \(needed) \(fits ? "<=" : ">") \(underlayMTU): \(fits ? "ok" : "fail")")
            // Sleeve is every connection's fallback: if it does not fit, large frames are lost.
            if !fits && mode == "sleeve" {
                status = .fail
                fixes.append("start the router with --mtu \(underlayMTU - overhead) (or without --mtu: it derives that from the underlay), or raise the underlay MTU to \(needed)")
            }
        }
        // Each connection's measured MTU, then each relayed peer's route MTU (`pathMtu`, every
        // hop counted; a direct peer's is its connection's figure): what it is, and the fix when
        // it is below the overlay.
        var paths: [(what: String, mtu: Int, fix: String)] = facts.connections.compactMap { c in
            guard c.state == .established, let measured = c.mtu else { return nil }
            return ("connection \(label(c))", measured,
                    "a hop towards \(label(c)) has a smaller MTU than this host's underlay: fix the hop, or use --mtu \(measured) on every host so large packets do not depend on ICMP too-big")
        }
        for p in facts.peers where p.reachable && !p.isSelf && p.nextHop != nil && p.nextHop != p.name {
            guard let measured = p.pathMtu else { continue }
            let via = facts.peers.first { $0.name == p.nextHop }.map { "\($0.name) (\($0.nickname))" } ?? p.nextHop!
            paths.append(("peer \(p.name) (\(p.nickname)) through \(via)", measured,
                          "a hop on the route to \(p.name) (\(p.nickname)) has a smaller MTU: larger packets are answered with ICMP too-big; use --mtu \(measured) on every host so they do not depend on it"))
        }
        for path in paths {
            if path.mtu < overlay {
                parts.append("\(path.what): path MTU \(path.mtu) < overlay \(overlay)")
                status = max(status, .warn)
                fixes.append(path.fix)
            } else {
                parts.append("\(path.what): path MTU \(path.mtu)")
            }
        }
        return DoctorCheck(check: "mtu", status: status, detail: parts.joined(separator: "; "), fix: fixes.joined(separator: "; "))
    }

    // MARK: 2. offload

    /// Kernels that corrupt virtio_net when a raw socket sends a datagram larger than the MTU
    /// with UDP fragmentation offload on: before 3.13, except RHEL 3.10.0-229 and later.
    static func kernelHasUFOBug(_ release: String) -> Bool {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        guard numbers.count >= 2 else { return false }
        let (major, minor) = (numbers[0], numbers[1])
        guard major < 3 || (major == 3 && minor < 13) else { return false }
        if major == 3, minor == 10, numbers.count >= 4, numbers[2] == 0, release.contains(".el"), numbers[3] >= 229 { return false }
        return true
    }

    static func offload(_ facts: DoctorFacts) -> DoctorCheck {
        let release = facts.kernelRelease.isEmpty ? "unknown" : facts.kernelRelease
        guard kernelHasUFOBug(facts.kernelRelease) else {
            return DoctorCheck(check: "offload", status: .ok,
                               detail: "kernel \(release) is not affected by the virtio_net UDP fragmentation offload bug (fixed in 3.13 and RHEL 3.10.0-229)")
        }
        let risky = underlay(facts).filter { $0.driver == "virtio_net" && $0.udpFragmentationOffload != false }
        guard !risky.isEmpty else {
            return DoctorCheck(check: "offload", status: .ok,
                               detail: "kernel \(release) has the virtio_net UFO bug, but no underlay interface is virtio_net with UDP fragmentation offload on")
        }
        let names = risky.map { "\($0.name) (virtio_net, ufo \($0.udpFragmentationOffload == nil ? "unknown" : "on"))" }
        return DoctorCheck(check: "offload", status: .warn,
                           detail: "kernel \(release) corrupts virtio_net when a datagram larger than the MTU is sent from a raw socket with UDP fragmentation offload on: \(names.joined(separator: ", "))",
                           fix: risky.map { "ethtool -K \($0.name) ufo off" }.joined(separator: "; ") + "; or upgrade the kernel (3.13+, RHEL 3.10.0-229+)")
    }

    // MARK: 3. bridge-mac

    static func bridgeMAC(_ facts: DoctorFacts) -> DoctorCheck {
        var parts: [String] = []
        var status = DoctorCheck.Status.ok
        var fixes: [String] = []
        if let bridge = facts.interface(WeftInterfaces.bridge) {
            let mac = HostNetwork.format(bridge.mac)
            var problems: [String] = []
            if let type = bridge.addrAssignType, type != 3 {
                problems.append("addr_assign_type \(type), not 3 (set): it follows its ports")
            }
            if let name = facts.router?.name, name.lowercased() != mac {
                problems.append("MAC \(mac) is not the peer name \(name)")
            }
            if problems.isEmpty {
                let type = bridge.addrAssignType.map { "addr_assign_type \($0) (set)" } ?? "addr_assign_type unreadable"
                parts.append("bridge \(bridge.name) MAC \(mac), \(type)\(facts.router == nil ? "" : ", equal to the peer name")")
            } else {
                status = .fail
                parts.append("bridge \(bridge.name): " + problems.joined(separator: "; "))
                fixes.append("restart the router: it sets the \(bridge.name) bridge's MAC to the peer name explicitly (or weft reset, then launch)")
            }
        } else {
            parts.append("no \(WeftInterfaces.bridge) bridge")
        }
        for bridge in pathBridges(facts) where bridge.addrAssignType != nil && bridge.addrAssignType != 3 {
            status = max(status, .warn)
            parts.append("bridge \(bridge.name) inherits its MAC \(HostNetwork.format(bridge.mac)) from its ports (addr_assign_type \(bridge.addrAssignType!)): it changes when a port with a lower MAC joins, and conntrack then drops flows")
            fixes.append("ip link set \(bridge.name) address \(HostNetwork.format(bridge.mac)) (set it explicitly, also in the distribution's network configuration)")
        }
        if status == .ok, facts.interface(WeftInterfaces.bridge) != nil || !pathBridges(facts).isEmpty {
            let others = pathBridges(facts).map(\.name)
            if !others.isEmpty { parts.append("other bridges on the path with a set MAC: \(others.joined(separator: ", "))") }
        }
        return DoctorCheck(check: "bridge-mac", status: status, detail: parts.joined(separator: "; "), fix: fixes.joined(separator: "; "))
    }

    /// Bridges other than Weft's that carry the router's traffic: underlay bridges and the
    /// masters of underlay interfaces.
    static func pathBridges(_ facts: DoctorFacts) -> [DoctorFacts.Interface] {
        let underlay = underlay(facts)
        var names = Set(underlay.filter { $0.kind == "bridge" }.map(\.name))
        for link in underlay { if let master = link.master { names.insert(master) } }
        names.remove(WeftInterfaces.bridge)
        return facts.interfaces.filter { names.contains($0.name) && $0.kind == "bridge" }.sorted { $0.name < $1.name }
    }

    // MARK: 4. bridge-netfilter

    static let bridgeNetfilterKeys = ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"]

    static func bridgeNetfilter(_ facts: DoctorFacts) -> DoctorCheck {
        guard let values = facts.bridgeNetfilter else {
            return DoctorCheck(check: "bridge-netfilter", status: .ok, detail: "br_netfilter is not loaded: host firewall rules do not see bridged frames")
        }
        let on = bridgeNetfilterKeys.filter { (values[$0] ?? 0) != 0 }
        guard !on.isEmpty else {
            return DoctorCheck(check: "bridge-netfilter", status: .ok, detail: "br_netfilter loaded, \(bridgeNetfilterKeys.joined(separator: ", ")) all 0")
        }
        let settings = on.map { "\($0)=1" }.joined(separator: ", ")
        guard facts.interface(WeftInterfaces.bridge) != nil else {
            return DoctorCheck(check: "bridge-netfilter", status: .ok,
                               detail: "\(settings), but there is no \(WeftInterfaces.bridge) bridge carrying overlay traffic")
        }
        return DoctorCheck(check: "bridge-netfilter", status: .warn,
                           detail: "\(settings) while bridge \(WeftInterfaces.bridge) carries overlay traffic: host iptables/ip6tables/arptables rules now apply to frames bridged between workloads and the router",
                           fix: "if no rule is meant for bridged frames: " + on.map { "sysctl -w net.bridge.\($0)=0" }.joined(separator: "; ")
                               + "; otherwise make sure the FORWARD rules accept overlay traffic on \(WeftInterfaces.bridge)")
    }

    // MARK: 5. bonding

    static func bonding(_ facts: DoctorFacts) -> DoctorCheck {
        var bonds: [(bond: DoctorFacts.Interface, via: String, bridged: String?)] = []
        for link in underlay(facts) {
            // The underlay interface itself and, when it is a bridge, its ports.
            let candidates = [link] + (link.kind == "bridge" ? facts.interfaces.filter { $0.master == link.name } : [])
            for candidate in candidates {
                let bond = candidate.kind == "bond" ? candidate
                    : candidate.kind == "vlan" ? candidate.lowers.compactMap(facts.interface).first { $0.kind == "bond" } : nil
                guard let bond else { continue }
                let bridged = link.kind == "bridge" ? link.name : candidate.master.flatMap(facts.interface).flatMap { $0.kind == "bridge" ? $0.name : nil }
                bonds.append((bond, candidate.name, bridged))
            }
        }
        guard !bonds.isEmpty else { return DoctorCheck(check: "bonding", status: .ok, detail: "no bond on the underlay path") }
        var parts: [String] = []
        var status = DoctorCheck.Status.ok
        var fixes: [String] = []
        for (bond, via, bridged) in bonds {
            let mode = bond.bondMode ?? "unknown mode"
            let path = via == bond.name ? bond.name : "\(via) on \(bond.name)"
            if mode == "balance-rr", let bridged {
                status = .warn
                parts.append("\(path) is a balance-rr bond under bridge \(bridged): ARP replies arriving on the other slave are lost")
                fixes.append("use bonding mode balance-tlb or 802.3ad on \(bond.name)")
            } else {
                parts.append("\(path): bond in \(mode)\(bridged.map { " under bridge \($0)" } ?? ", no bridge above it")")
            }
        }
        return DoctorCheck(check: "bonding", status: status, detail: parts.joined(separator: "; "), fix: fixes.joined(separator: "; "))
    }

    // MARK: 6. fastdp

    static func fastdp(_ facts: DoctorFacts) -> DoctorCheck {
        var parts = [facts.openvswitchPresent ? "openvswitch module present" : "openvswitch module not present: fastdp is unavailable, connections use sleeve"]
        var status = DoctorCheck.Status.ok
        var fixes: [String] = []
        let vxlanPort = fastdpPort(facts)
        // The router's own VXLAN vport holds the port while fastdp runs; anything else on it
        // keeps fastdp from starting.
        let ours = facts.interfaces.contains { $0.name == FastDatapath.vxlanVportName }
        if facts.udpPortsBound.contains(vxlanPort) && !ours {
            let vxlan = facts.interfaces.filter { $0.kind == "vxlan" }.map(\.name)
            status = .warn
            parts.append("UDP \(vxlanPort) (fastdp VXLAN) is already bound by another socket or device\(vxlan.isEmpty ? "" : " (VXLAN devices: \(vxlan.joined(separator: ", ")))")")
            fixes.append("remove the device or service that holds UDP \(vxlanPort), or fastdp cannot start")
        }
        for c in facts.connections where c.state == .established {
            let mode = c.mode ?? "none"
            // Fastdp is preferred exactly where no encryption is needed (docs/design.md §5).
            let preferred = OverlayMode.preferred(encrypted: c.encrypted).rawValue
            if mode == preferred {
                parts.append("connection \(label(c)): \(mode)")
            } else {
                status = .warn
                let why = c.reason ?? (facts.openvswitchPresent ? "no reason given" : "openvswitch module not present")
                parts.append("connection \(label(c)): \(mode), preferred \(preferred): \(why)")
                fixes.append(facts.openvswitchPresent ? "see the reason for \(label(c)); check UDP \(vxlanPort) between the hosts" : "load the openvswitch module (modprobe openvswitch) for fastdp on trusted links")
            }
        }
        return DoctorCheck(check: "fastdp", status: status, detail: parts.joined(separator: "; "), fix: Array(Set(fixes)).sorted().joined(separator: "; "))
    }

    // MARK: 7. fragmentation

    static let fragmentationCounters = ["FragFails", "ReasmFails", "FragCreates"]

    static func fragmentation(_ facts: DoctorFacts) -> DoctorCheck {
        guard let sample = facts.ipCounters else {
            return DoctorCheck(check: "fragmentation", status: .ok, detail: "/proc/net/snmp not readable; not sampled")
        }
        let deltas = fragmentationCounters.map { ($0, (sample.after[$0] ?? 0) - (sample.before[$0] ?? 0)) }
        let text = deltas.map { "\($0.0) +\($0.1)" }.joined(separator: ", ")
        let seconds = String(format: "%.0f", sample.seconds)
        guard deltas.contains(where: { $0.1 > 0 }) else {
            return DoctorCheck(check: "fragmentation", status: .ok, detail: "over \(seconds) s: \(text)")
        }
        return DoctorCheck(check: "fragmentation", status: .warn,
                           detail: "over \(seconds) s: \(text): packets are being fragmented or fail to reassemble, the classic sign of an MTU error",
                           fix: "find the hop with the smaller MTU (tracepath to each peer) and lower --mtu (see the mtu check), or raise that hop's MTU")
    }

    // MARK: 8. firewall

    static func firewall(_ facts: DoctorFacts) -> DoctorCheck {
        let port = facts.router?.port ?? WeftPorts.gossip
        let ports = [("tcp", port), ("udp", port), ("udp", fastdpPort(facts))]
        let wanted = ports.map { "\($0.0.uppercased()) \($0.1)" }.joined(separator: ", ")
        guard let listings = facts.firewall else {
            let why = facts.firewallUnreadable.isEmpty ? "neither nft nor iptables is installed"
                : "\(facts.firewallUnreadable.joined(separator: ", ")) could not list the rules (doctor runs them as this user; root can)"
            return DoctorCheck(check: "firewall", status: .ok, detail: "not checked: \(why) (best effort; \(wanted) must be open)")
        }
        var hits: [String] = []
        for listing in listings {
            for line in listing.lines where FirewallRule.blocks(line, any: ports) {
                hits.append("\(listing.tool): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        let tools = listings.map(\.tool).joined(separator: ", ")
        guard !hits.isEmpty else {
            return DoctorCheck(check: "firewall", status: .ok, detail: "no \(tools) rule drops \(wanted) (best effort: explicit rules only)")
        }
        return DoctorCheck(check: "firewall", status: .warn,
                           detail: "rules that drop Weft traffic (\(wanted)): " + hits.joined(separator: "; "),
                           fix: "allow \(wanted) between the hosts (delete these rules or add accept rules before them)")
    }
}

/// Best-effort reading of one nft or iptables-save rule: does it drop or reject any of the
/// (protocol, port) pairs? Recognises `tcp dport 6783 drop`, `udp dport { 6783, 6784 } reject`,
/// `th dport 6000-7000 drop`, `-p udp --dport 6784 -j DROP`, `--dports 6783,6784`, `--dport 6000:7000`.
enum FirewallRule {
    static func blocks(_ line: String, any ports: [(String, Int)]) -> Bool {
        let words = line.replacingOccurrences(of: "{", with: " ").replacingOccurrences(of: "}", with: " ")
            .replacingOccurrences(of: ",", with: " ").split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let lower = words.map { $0.lowercased() }
        let drops = lower.contains("drop") || lower.contains("reject")
        guard drops, !lower.contains("accept") else { return false }
        var protocols: Set<String> = []
        var ranges: [ClosedRange<Int>] = []
        var i = 0
        while i < lower.count {
            let word = lower[i]
            if (word == "tcp" || word == "udp"), i + 1 < lower.count, lower[i + 1] == "dport" { protocols.insert(word) }
            if word == "th" || word == "-p" || word == "--protocol" || word == "l4proto" {
                if i + 1 < lower.count, ["tcp", "udp"].contains(lower[i + 1]) { protocols.insert(lower[i + 1]) }
            }
            if word == "dport" || word == "--dport" || word == "--dports" || word == "--destination-port" {
                var j = i + 1
                while j < lower.count, let range = portRange(lower[j]) {
                    ranges.append(range)
                    j += 1
                }
                i = j
                continue
            }
            i += 1
        }
        guard !ranges.isEmpty else { return false }
        if protocols.isEmpty { protocols = ["tcp", "udp"] }  // `th dport` without a protocol
        return ports.contains { proto, port in protocols.contains(proto) && ranges.contains { $0.contains(port) } }
    }

    /// "6784", "6000-7000" (nft), "6000:7000" (iptables); nil for anything else.
    static func portRange(_ word: String) -> ClosedRange<Int>? {
        let parts = word.split(whereSeparator: { $0 == "-" || $0 == ":" }).map { Int($0) }
        if parts.count == 1, let a = parts[0], (0...65535).contains(a) { return a...a }
        if parts.count == 2, let a = parts[0], let b = parts[1], a <= b { return a...b }
        return nil
    }
}
