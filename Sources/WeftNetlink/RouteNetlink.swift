import CMnl
#if canImport(Glibc)
import Glibc
#endif

/// One network interface as rtnetlink reports it.
public struct LinkInfo: Sendable, Equatable {
    public let index: Int32
    public let name: String
    /// IFLA_LINKINFO / IFLA_INFO_KIND: "bridge", "veth", "tun" (also for TAP), …; nil for
    /// devices without rtnl link ops (physical NICs, lo).
    public let kind: String?
    public let mtu: Int
    public let mac: [UInt8]
    /// Administratively up (IFF_UP), not the operational state.
    public let isUp: Bool
    /// Index of the master (bridge) device, nil when the link has none.
    public let masterIndex: Int32?
    /// /sys/class/net/NAME/addr_assign_type (0 permanent, 1 random, 2 stolen, 3 set), when the
    /// sysfs this process sees belongs to the socket's network namespace; otherwise nil.
    public let addrAssignType: UInt8?

    public init(index: Int32, name: String, kind: String?, mtu: Int, mac: [UInt8], isUp: Bool,
                masterIndex: Int32?, addrAssignType: UInt8?) {
        self.index = index
        self.name = name
        self.kind = kind
        self.mtu = mtu
        self.mac = mac
        self.isUp = isUp
        self.masterIndex = masterIndex
        self.addrAssignType = addrAssignType
    }
}

private let iffUp: UInt32 = 0x1  // IFF_UP (imported twice, from Glibc and linux headers)
private let maxIFLA = __IFLA_MAX - 1
private let maxIFLAInfo = __IFLA_INFO_MAX - 1
private let maxIFA = __IFA_MAX - 1

/// rtnetlink (NETLINK_ROUTE) over one libmnl socket, bound to the network namespace it was
/// created in. Every change is sent with NLM_F_ACK and the kernel's answer is checked; requests
/// from several threads are serialized.
public final class RouteNetlink: @unchecked Sendable {
    private let socket: NetlinkSocket
    /// The socket's netns is the process's netns, so /sys/class/net (mounted for the process's
    /// namespace in the usual setups) can describe its links.
    private let sysfsMayMatch: Bool

    /// A socket in the calling thread's network namespace.
    public init() throws {
        socket = try NetlinkSocket(bus: NETLINK_ROUTE)
        let own = namespaceIdentity("/proc/thread-self/ns/net")
        sysfsMayMatch = own != nil && own == namespaceIdentity("/proc/self/ns/net")
    }

    /// A socket created inside the network namespace `fd` refers to, on a short-lived thread;
    /// the calling thread stays where it is. The socket keeps working in that namespace.
    public static func inNamespace(fd: Int32) throws -> RouteNetlink {
        try NetworkNamespace.perform(inNamespaceFd: fd) { try RouteNetlink() }
    }

    // MARK: Links

    public func links() throws -> [LinkInfo] {
        var result: [LinkInfo] = []
        try dumpWithRetry("list links") {
            result = []
            try socket.request("list links", type: Int(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_DUMP,
                               build: { m in
                m.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
                m.putU32(IFLA_EXT_MASK, UInt32(RTEXT_FILTER_SKIP_STATS))
            }, onMessage: { nlh in
                if let link = parseLink(nlh) { result.append(link) }
            })
        }
        return result.map(withSysfs)
    }

    /// The link called `named`, or nil when there is none.
    public func link(named name: String) throws -> LinkInfo? {
        try checkName(name, "look up link")
        var found: LinkInfo?
        do {
            try socket.request("look up link '\(name)'", type: Int(RTM_GETLINK), flags: NLM_F_REQUEST | NLM_F_ACK,
                               build: { m in
                m.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
                m.putString(IFLA_IFNAME, name)
                m.putU32(IFLA_EXT_MASK, UInt32(RTEXT_FILTER_SKIP_STATS))
            }, onMessage: { nlh in
                if let link = parseLink(nlh) { found = link }
            })
        } catch let error as NetlinkError where error.errno == ENODEV {
            return nil
        }
        return found.map(withSysfs)
    }

    /// Creates a bridge with a fixed MAC (so addr_assign_type is "set" and the bridge does not
    /// take over a port's MAC) and a fixed MTU. The MTU is then re-set through the MTU-change
    /// path, so that the kernel marks it as chosen by the user and does not lower or raise it
    /// to the ports' MTU when ports join (an MTU given at creation does not count as such).
    public func createBridge(name: String, mac: [UInt8], mtu: Int) throws {
        let operation = "create bridge '\(name)'"
        try checkName(name, operation)
        try checkMAC(mac, operation)
        try checkMTU(mtu, operation)
        try socket.request(operation, type: Int(RTM_NEWLINK),
                           flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, build: { m in
            m.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
            m.putString(IFLA_IFNAME, name)
            m.putBytes(IFLA_ADDRESS, mac)
            m.putU32(IFLA_MTU, UInt32(mtu))
            m.nest(IFLA_LINKINFO) {
                m.putString(IFLA_INFO_KIND, "bridge")
            }
        })
        // Pin the MTU: the kernel skips a change to the current value, so step away and back.
        try setMTU(name, mtu > 68 ? mtu - 1 : mtu + 1)
        try setMTU(name, mtu)
    }

    /// Creates a veth pair `name` (here) – `peerName` (here, or inside the namespace
    /// `peerNamespaceFd` refers to; the peer is created there directly), both with `mtu`.
    public func createVeth(name: String, peerName: String, peerNamespaceFd: Int32?, mtu: Int) throws {
        let operation = "create veth '\(name)' with peer '\(peerName)'"
            + (peerNamespaceFd.map { " in namespace fd \($0)" } ?? "")
        try checkName(name, operation)
        try checkName(peerName, operation)
        try checkMTU(mtu, operation)
        try socket.request(operation, type: Int(RTM_NEWLINK),
                           flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, build: { m in
            m.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
            m.putString(IFLA_IFNAME, name)
            m.putU32(IFLA_MTU, UInt32(mtu))
            m.nest(IFLA_LINKINFO) {
                m.putString(IFLA_INFO_KIND, "veth")
                m.nest(IFLA_INFO_DATA) {
                    // VETH_INFO_PEER holds a struct ifinfomsg followed by the peer's IFLA_* attributes.
                    m.nest(VETH_INFO_PEER) {
                        m.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
                        m.putString(IFLA_IFNAME, peerName)
                        m.putU32(IFLA_MTU, UInt32(mtu))
                        if let fd = peerNamespaceFd { m.putU32(IFLA_NET_NS_FD, UInt32(bitPattern: fd)) }
                    }
                }
            }
        })
    }

    /// Enslaves `name` to the bridge `master`, or releases it when `master` is nil.
    public func setMaster(_ name: String, master: String?) throws {
        let operation = master.map { "set master of '\(name)' to '\($0)'" } ?? "release '\(name)' from its master"
        try checkName(name, operation)
        var masterIndex: Int32 = 0
        if let master {
            try checkName(master, operation)
            guard let info = try link(named: master) else {
                throw NetlinkError(operation: operation, errno: ENODEV, detail: "no link named '\(master)'")
            }
            masterIndex = info.index
        }
        try setLink(name, operation) { m in m.putU32(IFLA_MASTER, UInt32(bitPattern: masterIndex)) }
    }

    public func setUp(_ name: String, _ up: Bool) throws {
        let operation = "set link '\(name)' \(up ? "up" : "down")"
        try checkName(name, operation)
        try setLink(name, operation, change: iffUp, flags: up ? iffUp : 0) { _ in }
    }

    public func setMTU(_ name: String, _ mtu: Int) throws {
        let operation = "set MTU of '\(name)' to \(mtu)"
        try checkName(name, operation)
        try checkMTU(mtu, operation)
        try setLink(name, operation) { m in m.putU32(IFLA_MTU, UInt32(mtu)) }
    }

    public func setMAC(_ name: String, _ mac: [UInt8]) throws {
        let operation = "set MAC of '\(name)' to \(formatMAC(mac))"
        try checkName(name, operation)
        try checkMAC(mac, operation)
        try setLink(name, operation) { m in m.putBytes(IFLA_ADDRESS, mac) }
    }

    /// Deletes the link (for a veth, both ends). A link that does not exist is not an error.
    public func deleteLink(_ name: String) throws {
        let operation = "delete link '\(name)'"
        try checkName(name, operation)
        do {
            try socket.request(operation, type: Int(RTM_DELLINK), flags: NLM_F_REQUEST | NLM_F_ACK, build: { m in
                m.putHeader(ifinfomsg.self) { $0.ifi_family = UInt8(AF_UNSPEC) }
                m.putString(IFLA_IFNAME, name)
            })
        } catch let error as NetlinkError where error.errno == ENODEV {
            return
        }
    }

    // MARK: Addresses

    /// Adds an IPv4 or IPv6 address ("10.32.0.1/12", "fd00::1/64"). Already present is success.
    public func addAddress(_ name: String, cidr: String) throws {
        let operation = "add address \(cidr) to '\(name)'"
        let (index, prefix) = try addressTarget(name, cidr, operation)
        do {
            try socket.request(operation, type: Int(RTM_NEWADDR),
                               flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, build: { m in
                putAddress(m, index: index, prefix: prefix)
            })
        } catch let error as NetlinkError where error.errno == EEXIST {
            return
        }
    }

    /// Removes an address; one that is not there is not an error.
    public func deleteAddress(_ name: String, cidr: String) throws {
        let operation = "delete address \(cidr) from '\(name)'"
        let (index, prefix) = try addressTarget(name, cidr, operation)
        do {
            try socket.request(operation, type: Int(RTM_DELADDR), flags: NLM_F_REQUEST | NLM_F_ACK, build: { m in
                putAddress(m, index: index, prefix: prefix)
            })
        } catch let error as NetlinkError where error.errno == EADDRNOTAVAIL {
            return
        }
    }

    /// The addresses of `name` as CIDR strings (IPv4 first as the kernel dumps them, including
    /// IPv6 link-local addresses once the link is up).
    public func addresses(_ name: String) throws -> [String] {
        let operation = "list addresses of '\(name)'"
        try checkName(name, operation)
        guard let info = try link(named: name) else {
            throw NetlinkError(operation: operation, errno: ENODEV, detail: "no link named '\(name)'")
        }
        var result: [String] = []
        try dumpWithRetry(operation) {
            result = []
            try socket.request(operation, type: Int(RTM_GETADDR), flags: NLM_F_REQUEST | NLM_F_DUMP, build: { m in
                m.putHeader(ifaddrmsg.self) { $0.ifa_family = UInt8(AF_UNSPEC) }
            }, onMessage: { nlh in
                guard Int(mnl_nlmsg_get_payload_len(nlh)) >= MemoryLayout<ifaddrmsg>.size else { return }
                let ifa = mnl_nlmsg_get_payload(nlh)!.load(as: ifaddrmsg.self)
                guard ifa.ifa_index == UInt32(bitPattern: info.index) else { return }
                let table = AttributeTable(message: nlh, offset: MemoryLayout<ifaddrmsg>.size, maxType: maxIFA)
                // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
                guard let bytes = table.bytes(IFA_LOCAL) ?? table.bytes(IFA_ADDRESS),
                      let prefix = IPPrefix(family: Int32(ifa.ifa_family), bytes: bytes, length: ifa.ifa_prefixlen)
                else { return }
                result.append(prefix.description)
            })
        }
        return result
    }

    // MARK: Helpers

    private func setLink(_ name: String, _ operation: String, change: UInt32 = 0, flags: UInt32 = 0,
                         _ attributes: (MessageBuilder) -> Void) throws {
        // RTM_SETLINK with ifi_index 0 finds the device by IFLA_IFNAME: one round trip.
        try socket.request(operation, type: Int(RTM_SETLINK), flags: NLM_F_REQUEST | NLM_F_ACK, build: { m in
            m.putHeader(ifinfomsg.self) {
                $0.ifi_family = UInt8(AF_UNSPEC)
                $0.ifi_change = change
                $0.ifi_flags = flags
            }
            m.putString(IFLA_IFNAME, name)
            attributes(m)
        })
    }

    private func addressTarget(_ name: String, _ cidr: String, _ operation: String) throws -> (Int32, IPPrefix) {
        try checkName(name, operation)
        guard let prefix = IPPrefix(cidr) else {
            throw NetlinkError(operation: operation, errno: EINVAL,
                               detail: "'\(cidr)' is not an address with a prefix length (10.32.0.1/12, fd00::1/64)")
        }
        guard let info = try link(named: name) else {
            throw NetlinkError(operation: operation, errno: ENODEV, detail: "no link named '\(name)'")
        }
        return (info.index, prefix)
    }

    private func putAddress(_ m: MessageBuilder, index: Int32, prefix: IPPrefix) {
        m.putHeader(ifaddrmsg.self) {
            $0.ifa_family = UInt8(prefix.family)
            $0.ifa_prefixlen = prefix.length
            $0.ifa_scope = UInt8(RT_SCOPE_UNIVERSE.rawValue)
            $0.ifa_index = UInt32(bitPattern: index)
        }
        // As iproute2 does: IFA_LOCAL and IFA_ADDRESS both carry the address.
        m.putBytes(IFA_LOCAL, prefix.bytes)
        m.putBytes(IFA_ADDRESS, prefix.bytes)
    }

    /// Runs a dump again when the kernel reports it was interrupted by a concurrent change.
    private func dumpWithRetry(_ operation: String, _ body: () throws -> Void) throws {
        try retryingInterruptedDump(body)
    }

    private func withSysfs(_ link: LinkInfo) -> LinkInfo {
        guard sysfsMayMatch, let type = sysfsAddrAssignType(link) else { return link }
        return LinkInfo(index: link.index, name: link.name, kind: link.kind, mtu: link.mtu, mac: link.mac,
                        isUp: link.isUp, masterIndex: link.masterIndex, addrAssignType: type)
    }
}

/// Parses an RTM_NEWLINK message.
private func parseLink(_ nlh: UnsafePointer<nlmsghdr>) -> LinkInfo? {
    guard Int(nlh.pointee.nlmsg_type) == Int(RTM_NEWLINK),
          Int(mnl_nlmsg_get_payload_len(nlh)) >= MemoryLayout<ifinfomsg>.size else { return nil }
    let ifi = mnl_nlmsg_get_payload(nlh)!.load(as: ifinfomsg.self)
    let table = AttributeTable(message: nlh, offset: MemoryLayout<ifinfomsg>.size, maxType: maxIFLA)
    guard let name = table.string(IFLA_IFNAME) else { return nil }
    var kind: String?
    if let linkinfo = table[IFLA_LINKINFO] {
        kind = AttributeTable(nested: linkinfo, maxType: maxIFLAInfo).string(IFLA_INFO_KIND)
    }
    let master = table.u32(IFLA_MASTER).map { Int32(bitPattern: $0) }
    return LinkInfo(index: ifi.ifi_index, name: name, kind: kind,
                    mtu: Int(table.u32(IFLA_MTU) ?? 0),
                    mac: table.bytes(IFLA_ADDRESS) ?? [],
                    isUp: ifi.ifi_flags & iffUp != 0,
                    masterIndex: master == 0 ? nil : master,
                    addrAssignType: nil)
}

/// Interface names: 1…15 bytes (IFNAMSIZ - 1), no '/', ':' or whitespace, not "." or "..".
func checkName(_ name: String, _ operation: @autoclosure () -> String) throws {
    let bytes = Array(name.utf8)
    var problem: String?
    if bytes.isEmpty {
        problem = "the interface name is empty"
    } else if bytes.count > 15 {
        problem = "interface name '\(name)' is \(bytes.count) bytes long; Linux allows at most 15"
    } else if name == "." || name == ".." || bytes.contains(where: { $0 == 0x2F || $0 == 0x3A || $0 <= 0x20 || $0 == 0x7F }) {
        problem = "'\(name)' is not a valid interface name (no '/', ':', whitespace, '.' or '..')"
    }
    if let problem { throw NetlinkError(operation: operation(), errno: EINVAL, detail: problem) }
}

private func checkMAC(_ mac: [UInt8], _ operation: String) throws {
    guard mac.count == 6 else {
        throw NetlinkError(operation: operation, errno: EINVAL, detail: "a MAC address has 6 bytes, got \(mac.count)")
    }
}

private func checkMTU(_ mtu: Int, _ operation: String) throws {
    guard mtu >= 68 && mtu <= 65535 else {
        throw NetlinkError(operation: operation, errno: EINVAL, detail: "MTU \(mtu) is outside 68…65535")
    }
}

func formatMAC(_ mac: [UInt8]) -> String {
    mac.map { byte in
        let hex = String(byte, radix: 16)
        return hex.count == 1 ? "0" + hex : hex
    }.joined(separator: ":")
}
