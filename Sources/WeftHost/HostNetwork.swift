// The router's interfaces on its host (docs/design.md §3): the `weft` bridge with a MAC fixed from the
// peer name, the router's TAP port on it, veth pairs into workloads, and host addresses on the
// bridge. Everything goes through rtnetlink (WeftNetlink); nothing shells out to `ip`.
//
// Interfaces persist across router restarts (a restarted router adopts them); only the TAP goes
// away with the router, because it exists while its fd is open. `weft reset` removes the rest.
import Foundation
import Logging
import WeftControl
import WeftMesh
import WeftNetlink
import WeftWire

/// Interface names Weft creates; `weft reset` removes exactly these.
public enum WeftInterfaces {
    public static let bridge = "weft"
    public static let tap = "weft-tap"
    /// The Open vSwitch datapath of the fast datapath (one per network namespace).
    public static let datapath = "weft-dp"
    /// The veth pair joining the datapath to the bridge: the bridge's port and the datapath's.
    public static let datapathBridgePort = "weft-dpb"
    public static let datapathPort = "weft-dpp"
    /// Host ends of workload veth pairs: `weftv` + 8 hex digits.
    public static let workloadPrefix = "weftv"
    /// Default interface name inside a workload.
    public static let defaultWorkloadIfname = "ethwe"

    /// Whether `name` is one of the interfaces Weft creates.
    public static func isWeft(_ name: String) -> Bool {
        name == bridge || name == tap || name == datapathBridgePort || name == datapathPort || name.hasPrefix(workloadPrefix)
    }
}

/// A host-plumbing failure, worded for the operator: it names the namespace, address or
/// interface at fault.
public struct HostNetworkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The bridge, the router's TAP and the workloads of one router. Confined to the router's event
/// loop (netlink calls block, briefly); `tap.fd` is handed to the data plane's own threads.
public final class HostNetwork: @unchecked Sendable {
    let peerName: PeerName
    public let overlayMTU: Int
    /// MTU of the underlay interface the overlay MTU was derived from (or checked against).
    public let underlayMTU: Int
    /// The router's port on the bridge. Open until `close()`.
    public let tap: TapDevice
    private let netlink: RouteNetlink
    private let logger: Logger
    /// Attached since this router started, by host interface name.
    private var attached: [String: Workload] = [:]
    private var closed = false

    /// Opens the TAP first (it is busy while another router holds it, which must fail before the
    /// bridge is touched), then creates or adopts the bridge and makes the TAP its port.
    public init(peerName: PeerName, overlayMTU: Int, underlayMTU: Int, logger: Logger) throws {
        self.peerName = peerName
        self.overlayMTU = overlayMTU
        self.underlayMTU = underlayMTU
        self.logger = logger
        netlink = try RouteNetlink()
        // With a virtio header and TSO the kernel hands the data plane 64 KiB TCP super-frames
        // and takes them back: one system call where there would be dozens (issue: throughput).
        tap = try TapDevice.open(name: WeftInterfaces.tap, vnetHeader: true)
        do {
            try tap.enableTSO()
            try setUpBridge()
            try netlink.setMTU(WeftInterfaces.tap, overlayMTU)
            try netlink.setMaster(WeftInterfaces.tap, master: WeftInterfaces.bridge)
            try netlink.setUp(WeftInterfaces.tap, true)
            try adoptWorkloadPorts()
        } catch {
            tap.close()
            throw error
        }
    }

    private func setUpBridge() throws {
        let bridge = WeftInterfaces.bridge
        let mac = peerName.bytes
        if let existing = try netlink.link(named: bridge) {
            guard existing.kind == "bridge" else {
                throw HostNetworkError("an interface named '\(bridge)' exists and is a \(existing.kind ?? "device without a kind"), not a bridge; remove it (weft reset)")
            }
            // Setting the MAC (even to the same value) marks it as chosen (addr_assign_type 3),
            // so the kernel does not replace it when ports come and go.
            try netlink.setMAC(bridge, mac)
            if existing.mac != mac {
                logger.warning("bridge MAC was wrong; fixed", metadata: [
                    "bridge": "\(bridge)", "was": "\(Self.format(existing.mac))", "now": "\(peerName)",
                ])
            }
            // Step away and back: the kernel ignores a change to the current MTU, and only a
            // change pins it (docs/netlink.md).
            try netlink.setMTU(bridge, overlayMTU > 68 ? overlayMTU - 1 : overlayMTU + 1)
            try netlink.setMTU(bridge, overlayMTU)
            logger.info("adopted existing bridge", metadata: ["bridge": "\(bridge)", "mac": "\(peerName)", "mtu": "\(overlayMTU)"])
        } else {
            try netlink.createBridge(name: bridge, mac: mac, mtu: overlayMTU)
            logger.info("created bridge", metadata: ["bridge": "\(bridge)", "mac": "\(peerName)", "mtu": "\(overlayMTU)"])
        }
        try netlink.setUp(bridge, true)
    }

    /// Workload veths from an earlier run stay bridge ports, up, at the overlay MTU. Their inside
    /// ends are in namespaces this router does not know by name: a changed MTU is logged, and
    /// attaching the workload again updates it.
    private func adoptWorkloadPorts() throws {
        let bridgeIndex = try netlink.link(named: WeftInterfaces.bridge)?.index
        for link in try netlink.links() where link.name.hasPrefix(WeftInterfaces.workloadPrefix) && link.kind == "veth" {
            if link.mtu != overlayMTU {
                try netlink.setMTU(link.name, overlayMTU)
                logger.warning("workload MTU changed; attach the workload again to update its inside end", metadata: [
                    "host": "\(link.name)", "was": "\(link.mtu)", "mtu": "\(overlayMTU)",
                ])
            }
            if link.masterIndex != bridgeIndex { try netlink.setMaster(link.name, master: WeftInterfaces.bridge) }
            if !link.isUp { try netlink.setUp(link.name, true) }
        }
    }

    /// Creates (or adopts) the veth pair that joins the fast datapath to the bridge, both ends up
    /// at the overlay MTU, so workloads attach the same way whichever overlay carries a peer.
    /// Returns the name of the end the datapath takes as a port.
    public func attachDatapathVeth() throws -> String {
        let (bridgeEnd, datapathEnd) = (WeftInterfaces.datapathBridgePort, WeftInterfaces.datapathPort)
        if try netlink.link(named: bridgeEnd) == nil || netlink.link(named: datapathEnd) == nil {
            if try netlink.link(named: bridgeEnd) != nil { try netlink.deleteLink(bridgeEnd) }
            if try netlink.link(named: datapathEnd) != nil { try netlink.deleteLink(datapathEnd) }
            try netlink.createVeth(name: bridgeEnd, peerName: datapathEnd, peerNamespaceFd: nil, mtu: overlayMTU)
        }
        for name in [bridgeEnd, datapathEnd] { try netlink.setMTU(name, overlayMTU) }
        try netlink.setMaster(bridgeEnd, master: WeftInterfaces.bridge)
        for name in [bridgeEnd, datapathEnd] { try netlink.setUp(name, true) }
        return datapathEnd
    }

    /// Closes the TAP (the device disappears with it). The bridge and the workloads stay.
    public func close() {
        guard !closed else { return }
        closed = true
        tap.close()
    }

    // MARK: MTU

    /// The underlay MTU assumed where no link could carry the underlay (Ethernet's).
    static let assumedUnderlayMTU = 1500

    /// The smallest MTU of the links that could carry the underlay (`carriesUnderlay`),
    /// `assumedUnderlayMTU` when there is none, and the family the overlay MTU makes room for
    /// (`underlayFamily`).
    static func underlay(_ netlink: RouteNetlink) throws -> (mtu: Int, family: UnderlayFamily) {
        var smallest: Int?
        var addresses: [String] = []
        // A link can vanish between the dump and the address query: skip it.
        for link in try netlink.links() {
            var linkAddresses: [String]?
            guard carriesUnderlay(name: link.name, isUp: link.isUp, addresses: {
                linkAddresses = try? netlink.addresses(link.name)
                return linkAddresses
            }) else { continue }
            smallest = min(smallest ?? link.mtu, link.mtu)
            addresses += linkAddresses ?? []
        }
        return (smallest ?? assumedUnderlayMTU, underlayFamily(addresses: addresses))
    }

    /// Whether a link could carry the underlay, the rule of both the router and doctor: up, not
    /// loopback, not Weft's own, with at least one address that is not link-local. `addresses`
    /// is asked only for links that pass the rest (nil: unknown, the link does not count).
    static func carriesUnderlay(name: String, isUp: Bool, addresses: () -> [String]?) -> Bool {
        guard isUp, name != "lo", !WeftInterfaces.isWeft(name), let addresses = addresses() else { return false }
        return addresses.contains { !isLinkLocal($0) }
    }

    /// The family whose outer header the overlay MTU makes room for, given the addresses of the
    /// links that carry the underlay: IPv6 (40 bytes) when any of them is a routable IPv6
    /// address, since a peer may then be reached over IPv6; else IPv4 (20). One overlay MTU then
    /// fits every link of the host without an ICMP round (docs/protocol.md §5.6).
    static func underlayFamily(addresses: [String]) -> UnderlayFamily {
        addresses.contains { $0.contains(":") && !isLinkLocal($0) } ? .ipv6 : .ipv4
    }

    /// The default overlay MTU in this network namespace: underlay MTU − sleeve overhead of the
    /// underlay's family.
    public static func defaultOverlayMTU() throws -> (overlay: Int, underlay: Int, family: UnderlayFamily) {
        let (underlay, family) = try underlay(RouteNetlink())
        return (Sleeve.overlayMTU(underlayMTU: underlay, family: family), underlay, family)
    }

    static func isLinkLocal(_ cidr: String) -> Bool {
        let address = cidr.split(separator: "/").first.map { $0.lowercased() } ?? ""
        if address.hasPrefix("169.254.") { return true }
        return ["fe8", "fe9", "fea", "feb"].contains { address.hasPrefix($0) }
    }

    // MARK: Validation

    /// "10.47.0.1/24" or "fd00::1/64" in the kernel's spelling; a clear error otherwise.
    public static func canonicalCIDR(_ text: String) throws -> String {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(parts[1]),
              let address = IPAddress(String(parts[0])),
              address.isIPv4 != parts[0].contains(":"), length <= (address.isIPv4 ? 32 : 128) else {
            throw HostNetworkError("'\(text)' is not an address with a prefix length: write it like 10.47.0.1/24 or fd00::1/64")
        }
        return "\(address)/\(length)"
    }

    // MARK: Workloads

    /// The workload's namespace, as the operator named it.
    enum Target {
        case name(String)
        case pid(Int32)

        init(namespace: String?, pid: Int32?) throws {
            switch (namespace, pid) {
            case (let name?, nil): self = .name(name)
            case (nil, let pid?): self = .pid(pid)
            default: throw HostNetworkError("name either a network namespace or a process id (--pid), not both")
            }
        }

        var label: String {
            switch self {
            case .name(let name): return "network namespace '\(name)'"
            case .pid(let pid): return "network namespace of process \(pid)"
            }
        }

        /// Opens the namespace; a missing one is an error that names it.
        func open() throws -> Int32 {
            do {
                switch self {
                case .name(let name): return try NetworkNamespace.open(name: name)
                case .pid(let pid): return try NetworkNamespace.open(pid: pid)
                }
            } catch let error as NetlinkError where error.errno == ENOENT {
                throw HostNetworkError("\(label) not found")
            }
        }

        func matches(_ workload: Workload) -> Bool {
            switch self {
            case .name(let name): return workload.namespace == name
            case .pid(let pid): return workload.pid == pid
            }
        }
    }

    /// `weftv` + 8 hex digits of FNV-1a over (namespace inode, ifname): attaching the same
    /// namespace again, by name or by pid, finds the same veth.
    static func hostIfname(namespaceInode: UInt64, ifname: String) -> String {
        var hash: UInt32 = 0x811C_9DC5
        for byte in Array("\(namespaceInode)/\(ifname)".utf8) {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        let hex = String(hash, radix: 16)
        return WeftInterfaces.workloadPrefix + String(repeating: "0", count: 8 - hex.count) + hex
    }

    private static func inode(of fd: Int32) throws -> UInt64 {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw HostNetworkError("cannot identify the namespace: \(String(cString: strerror(errno)))")
        }
        return UInt64(st.st_ino)
    }

    /// Puts a veth into the workload's namespace (created there directly), gives it `cidr`, the
    /// overlay MTU and brings it (and `lo`) up; the host end becomes a bridge port. Idempotent.
    public func attach(namespace: String?, pid: Int32?, cidr: String, ifname: String) throws -> Workload {
        let target = try Target(namespace: namespace, pid: pid)
        let cidr = try Self.canonicalCIDR(cidr)
        let fd = try target.open()
        defer { Glibc.close(fd) }
        let host = Self.hostIfname(namespaceInode: try Self.inode(of: fd), ifname: ifname)
        var addresses: [String] = []
        var mac: String?
        do {
            let inside = try RouteNetlink.inNamespace(fd: fd)
            if let existing = try netlink.link(named: host) {
                guard existing.kind == "veth", try inside.link(named: ifname)?.kind == "veth" else {
                    throw HostNetworkError("host interface '\(host)' exists but is not the veth of '\(ifname)' in \(target.label); run weft detach or weft reset")
                }
            } else {
                do {
                    try netlink.createVeth(name: host, peerName: ifname, peerNamespaceFd: fd, mtu: overlayMTU)
                } catch let error as NetlinkError where error.errno == EEXIST {
                    throw HostNetworkError("an interface named '\(ifname)' already exists in \(target.label); choose another with --ifname")
                }
            }
            try netlink.setMTU(host, overlayMTU)
            try netlink.setMaster(host, master: WeftInterfaces.bridge)
            try netlink.setUp(host, true)
            try inside.setMTU(ifname, overlayMTU)
            do {
                try inside.addAddress(ifname, cidr: cidr)
            } catch {
                throw HostNetworkError("cannot add address \(cidr) to '\(ifname)' in \(target.label): \(error)")
            }
            try inside.setUp(ifname, true)
            try inside.setUp("lo", true)
            // What the interface has now, including addresses from earlier attaches.
            addresses = try inside.addresses(ifname).filter { !Self.isLinkLocal($0) }
            mac = try inside.link(named: ifname).map { Self.format($0.mac) }
        } catch let error as HostNetworkError {
            throw error
        } catch {
            throw HostNetworkError("cannot attach \(target.label): \(error)")
        }
        let workload = Workload(namespace: namespace, pid: pid, ifname: ifname, hostIfname: host, mac: mac, cidrs: addresses)
        attached[host] = workload
        logger.info("workload attached", metadata: [
            "namespace": "\(namespace ?? "")", "pid": "\(pid.map(String.init) ?? "")", "ifname": "\(ifname)",
            "host": "\(host)", "cidr": "\(cidr)",
        ])
        return workload
    }

    /// Removes every Weft veth of the namespace (deleting the host end deletes both). Returns
    /// whether anything was attached. A namespace that is gone detaches what was recorded for it.
    public func detach(namespace: String?, pid: Int32?) throws -> Bool {
        let target = try Target(namespace: namespace, pid: pid)
        var removed: Set<String> = []
        let fd: Int32
        do {
            fd = try target.open()
        } catch {
            // Its veths died with it; forget the records, or report the unknown namespace.
            let recorded = attached.values.filter(target.matches)
            guard !recorded.isEmpty else { throw error }
            for workload in recorded { attached[workload.hostIfname] = nil }
            return false
        }
        defer { Glibc.close(fd) }
        do {
            // Found from the namespace's own interfaces, so veths from before a router restart
            // are found too.
            let inode = try Self.inode(of: fd)
            let inside = try RouteNetlink.inNamespace(fd: fd)
            var candidates = Set(attached.values.filter(target.matches).map(\.hostIfname))
            for link in try inside.links() where link.kind == "veth" {
                candidates.insert(Self.hostIfname(namespaceInode: inode, ifname: link.name))
            }
            for host in candidates.sorted() {
                if try netlink.link(named: host)?.kind == "veth" {
                    try netlink.deleteLink(host)
                    removed.insert(host)
                }
                attached[host] = nil
            }
        } catch {
            throw HostNetworkError("cannot detach \(target.label): \(error)")
        }
        if !removed.isEmpty {
            logger.info("workload detached", metadata: [
                "namespace": "\(namespace ?? "")", "pid": "\(pid.map(String.init) ?? "")",
                "host": "\(removed.sorted().joined(separator: ","))",
            ])
        }
        return !removed.isEmpty
    }

    /// The workloads attached since this router started whose veth still exists (a deleted
    /// namespace takes its veth with it).
    public var workloads: [Workload] {
        let existing = Set(((try? netlink.links()) ?? []).map(\.name))
        attached = attached.filter { existing.contains($0.key) }
        return attached.values.sorted { $0.hostIfname < $1.hostIfname }
    }

    // MARK: Host addresses

    /// Gives the host an address on the bridge. Returns false when it was there already.
    public func expose(cidr: String) throws -> Bool {
        let cidr = try Self.canonicalCIDR(cidr)
        do {
            let present = try netlink.addresses(WeftInterfaces.bridge).contains(cidr)
            try netlink.addAddress(WeftInterfaces.bridge, cidr: cidr)
            if !present { logger.info("address exposed", metadata: ["cidr": "\(cidr)", "bridge": "\(WeftInterfaces.bridge)"]) }
            return !present
        } catch {
            throw HostNetworkError("cannot expose \(cidr) on '\(WeftInterfaces.bridge)': \(error)")
        }
    }

    /// Removes a host address from the bridge. Returns false when it was not there.
    public func hide(cidr: String) throws -> Bool {
        let cidr = try Self.canonicalCIDR(cidr)
        do {
            let present = try netlink.addresses(WeftInterfaces.bridge).contains(cidr)
            try netlink.deleteAddress(WeftInterfaces.bridge, cidr: cidr)
            if present { logger.info("address hidden", metadata: ["cidr": "\(cidr)", "bridge": "\(WeftInterfaces.bridge)"]) }
            return present
        } catch {
            throw HostNetworkError("cannot hide \(cidr) on '\(WeftInterfaces.bridge)': \(error)")
        }
    }

    // MARK: Reset

    /// Whether Weft's TAP exists in the calling thread's network namespace. It is not made
    /// persistent, so it exists exactly while a router holds it open.
    public static func tapExists() -> Bool {
        ((try? RouteNetlink().link(named: WeftInterfaces.tap)) ?? nil) != nil
    }

    /// Deletes every interface Weft creates in the calling thread's network namespace (workload
    /// veths, the TAP, the bridge, the fast datapath and its veth pair), without a router. Returns the names removed.
    public static func reset() throws -> [String] {
        var removed: [String] = []
        // The fast datapath first (with its VXLAN vport), where the kernel has the module.
        if let odp = try? ODPClient.open(), (try? odp.datapath(named: WeftInterfaces.datapath)) ?? nil != nil {
            try odp.deleteDatapath(name: WeftInterfaces.datapath)
            removed.append(WeftInterfaces.datapath)
        }
        let netlink = try RouteNetlink()
        let names = try netlink.links().map(\.name).filter(WeftInterfaces.isWeft)
        // Ports before the bridge, so the bridge goes last.
        let ordered = names.filter { $0 != WeftInterfaces.bridge } + names.filter { $0 == WeftInterfaces.bridge }
        for name in ordered {
            // Gone already (a veth whose namespace was deleted meanwhile): not an error.
            guard try netlink.link(named: name) != nil else { continue }
            try netlink.deleteLink(name)
            removed.append(name)
        }
        return removed
    }

    static func format(_ mac: [UInt8]) -> String {
        mac.map { String(format: "%02x", $0) }.joined(separator: ":")
    }
}
